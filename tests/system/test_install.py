"""cmake --install into a scratch DESTDIR: the binary, both units pointing
at it, the shipped templates, the man pages and the example configuration,
which a second install leaves alone once an operator has edited it."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KALLAD, KalladCase, main  # noqa: E402


class InstallTest(KalladCase):
    def install(self, dest):
        build = os.path.dirname(os.path.abspath(KALLAD))
        p = subprocess.run(["cmake", "--install", build], capture_output=True, text=True,
                           env=dict(os.environ, DESTDIR=dest))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def find(self, dest, name):
        for root, _, files in os.walk(dest):
            if name in files:
                return os.path.join(root, name)
        self.fail(f"{name} was not installed")

    def test_install_and_keep_configuration(self):
        dest = os.path.join(self.tmpdir, "dest")
        self.install(dest)
        binary = self.find(dest, "kallad")
        self.assertTrue(os.access(binary, os.X_OK))
        installed_path = binary[len(dest):]
        for unit in ("kallad.service", "kallad@.service"):
            with open(self.find(dest, unit), encoding="utf-8") as f:
                text = f.read()
            self.assertIn(f"ExecStart={installed_path} --config /etc/kallad/", text)
            self.assertNotIn("@SBINDIR@", text)
        self.assertTrue(self.find(dest, "kallad.8").endswith("/man8/kallad.8"))
        self.assertTrue(self.find(dest, "kallad.conf.5").endswith("/man5/kallad.conf.5"))
        shipped = [os.path.join(root, "invite.txt") for root, _, files in os.walk(dest)
                   if "invite.txt" in files and "/share/kallad/templates/" in root]
        self.assertEqual(len(shipped), 2, shipped)  # sv and en
        conf = os.path.join(dest, "etc", "kallad", "kallad.conf")
        self.assertTrue(os.path.exists(conf))
        self.assertTrue(os.path.exists(os.path.join(dest, "etc", "kallad", "programme.ics")))
        with open(conf, encoding="utf-8") as f:
            text = f.read()
        # Data in the service's StateDirectory, not under read-only /etc.
        self.assertRegex(text, r"(?m)^registrations = /var/lib/kallad/registrations\.db ")
        self.assertRegex(text, r"(?m)^state\s+= /var/lib/kallad/state\.db ")
        # The example's attachments stay in its copy under share/kallad.
        m = re.search(r"(?m)^material\s+= (\S+)", text)
        self.assertIsNotNone(m, text)
        self.assertTrue(m.group(1).endswith("/share/kallad/example/material"), m.group(1))
        self.assertTrue(os.path.isfile(os.path.join(dest + m.group(1), "basfakta-gavle.pdf")))
        # So do its own texts (config/templates), which the configuration names.
        m = re.search(r"(?m)^templates\s+= (\S+)", text)
        self.assertIsNotNone(m, text)
        self.assertTrue(m.group(1).endswith("/share/kallad/example/templates"), m.group(1))
        self.assertTrue(os.path.isfile(os.path.join(dest + m.group(1), "sv", "invite.txt")))

        # An operator's edit survives the next install.
        with open(conf, "a", encoding="utf-8") as f:
            f.write("\n# edited by the operator\n")
        out = self.install(dest)
        self.assertIn("Keeping the existing", out)
        with open(conf, encoding="utf-8") as f:
            self.assertIn("edited by the operator", f.read())
        # The installed binary runs.
        p = subprocess.run([binary, "--version"], capture_output=True, text=True)
        self.assertRegex(p.stdout, r"^kallad \d+\.\d+")


if __name__ == "__main__":
    main()
