"""The systemd units: they verify, and their hardening stays at an
exposure of 1.5 or less by systemd-analyze's own measure."""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KALLAD, SOURCE, KalladCase, main  # noqa: E402


class UnitTest(KalladCase):
    def unit(self, name):
        with open(os.path.join(SOURCE, "systemd", name), encoding="utf-8") as f:
            text = f.read().replace("@SBINDIR@/kallad", os.path.abspath(KALLAD))
        path = os.path.join(self.tmpdir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_verify(self):
        for name in ("kallad.service", "kallad@.service"):
            path = self.unit(name)
            if "@" in name:
                inst = os.path.join(self.tmpdir, "kallad@example.service")
                shutil.copy(path, inst)
                path = inst
            p = subprocess.run(["systemd-analyze", "verify", "--man=no", path],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertNotIn("Unknown", p.stderr)

    def test_security_exposure(self):
        p = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                            self.unit("kallad.service")], capture_output=True, text=True)
        m = re.search(r"Overall exposure level for kallad.service: (\d+\.\d)", p.stdout)
        self.assertIsNotNone(m, p.stdout + p.stderr)
        self.assertLessEqual(float(m.group(1)), 1.5, p.stdout)

    def test_service_directives(self):
        with open(os.path.join(SOURCE, "systemd", "kallad.service"), encoding="utf-8") as f:
            text = f.read()
        for line in ("Type=notify", "StateDirectory=kallad", "ConfigurationDirectory=kallad",
                     "RestartPreventExitStatus=78", "Restart=on-failure", "ExecReload=",
                     "LoadCredential=smtp-password:", "WatchdogSec=", "DynamicUser=yes",
                     "\nSetCredential=smtp-password:\n"):
            self.assertIn(line, text)

    def test_template_has_a_user_name_for_admin_commands(self):
        with open(os.path.join(SOURCE, "systemd", "kallad@.service"), encoding="utf-8") as f:
            self.assertIn("\nUser=kallad-%i\n", f.read())

    def test_empty_credential_is_named(self):
        # Without /etc/kallad/smtp-password the unit's SetCredential= gives
        # an empty credential: the service starts, and says what is missing
        # once [smtp] wants a password.
        creds = os.path.join(self.tmpdir, "credentials")
        os.mkdir(creds)
        open(os.path.join(creds, "smtp-password"), "w").close()
        self.prog.append_conf("[smtp]\nurl = smtp://127.0.0.1:2525\ntls = none\n"
                              "user = program@example.org\npassword = smtp-password")
        p = self.prog.run("--check", env={"CREDENTIALS_DIRECTORY": creds})
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertIn("[smtp] password: the credential smtp-password is empty", p.stderr)
        self.assertIn("/etc/kallad/smtp-password", p.stderr)


if __name__ == "__main__":
    main()
