"""The Debian package, the way an operator meets it: scripts/package builds
it from a clean copy of the sources (unit tests in dh_auto_test, lintian
with no error or warning), apt installs it, the installed kallad runs
--version and --check on the installed example, the installed daemon
comes up and says what is missing, an upgrade keeps an edited conffile,
remove keeps configuration and state, and purge leaves nothing behind.

Installs system-wide (/usr/sbin/kallad, /etc/kallad, the units): needs
root, and takes a lock so that two checkouts on one machine never install
at once. Exits 77 (ctest: skipped) only when the package cannot be built
or installed here: not root, or debhelper/lintian missing and apt cannot
install them."""

import fcntl
import glob
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import SOURCE  # noqa: E402

CONF = "/etc/kallad/kallad.conf"
STATE = "/var/lib/kallad"
BIN = "/usr/sbin/kallad"
WANTS = "/etc/systemd/system/multi-user.target.wants/kallad.service"
APT = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-y", "-q"]
TOOLS = ["debhelper", "dpkg-dev", "lintian"]
LOCK = os.path.join("/run/lock" if os.path.isdir("/run/lock") else tempfile.gettempdir(),
                    "kallad-package-test.lock")


def skip(why):
    print(f"SKIPPED: {why}", flush=True)
    sys.exit(77)


def missing_tools():
    out = []
    for p in TOOLS:
        q = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        if "install ok installed" not in q.stdout:
            out.append(p)
    return out


def preconditions():
    if os.geteuid() != 0:
        skip("installing the .deb system-wide needs root")
    if missing_tools():
        p = subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q",
                            "--no-install-recommends", *missing_tools()],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if p.returncode != 0 or missing_tools():
            skip(f"cannot build a Debian package here: {', '.join(missing_tools())} missing "
                 f"and apt-get could not install them:\n{p.stderr[-2000:]}")


def run(cmd, check=0, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       env=dict(env or os.environ, DEBIAN_FRONTEND="noninteractive"))
    if check is not None and p.returncode != check:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}, not {check}\n"
                             f"stdout:\n{p.stdout[-6000:]}\nstderr:\n{p.stderr[-6000:]}")
    return p


def installed_version():
    p = run(["dpkg-query", "-W", "-f=${Status} ${Version}", "kallad"], check=None)
    m = re.match(r"install ok installed (\S+)$", p.stdout)
    return m.group(1) if m else None


def purge():
    run(APT + ["purge", "kallad"], check=None)


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kallad-package-")
        cls.out = os.path.join(cls.tmp, "out")
        p = subprocess.run([os.path.join(SOURCE, "scripts", "package")], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL,
                           env=dict(os.environ, KALLAD_PACKAGE_OUT=cls.out))
        cls.build = p
        debs = glob.glob(os.path.join(cls.out, "kallad_*.deb"))
        cls.deb = debs[0] if len(debs) == 1 else None

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def setUp(self):
        self.assertEqual(self.build.returncode, 0,
                         f"scripts/package failed:\n{self.build.stdout[-8000:]}\n"
                         f"{self.build.stderr[-8000:]}")
        self.assertIsNotNone(self.deb, os.listdir(self.out))

    def test_built_from_a_clean_copy_and_lintian_clean(self):
        out = self.build.stdout
        # dh_auto_test ran the unit tests, and only those.
        summary = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", out)
        self.assertIsNotNone(summary, "dh_auto_test did not run ctest:\n" + out[-3000:])
        self.assertEqual(summary.group(2), "0", out[-3000:])
        self.assertGreater(int(summary.group(3)), 5)
        self.assertIn("Test #", out)
        self.assertNotIn("system_test_", out)
        self.assertNotIn("test_transport", out)  # it runs SMTP servers
        with open(os.path.join(self.out, "lintian.txt"), encoding="utf-8") as f:
            lintian = f.read()
        self.assertEqual(re.findall(r"(?m)^[EW]: .*", lintian), [], lintian)
        # The name carries the project's version and the architecture.
        with open(os.path.join(SOURCE, "CMakeLists.txt"), encoding="utf-8") as f:
            version = re.search(r"project\(kallad VERSION ([0-9.]+)", f.read()).group(1)
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        self.assertEqual(os.path.basename(self.deb), f"kallad_{version}_{arch}.deb")

    def test_build_depends_name_every_library(self):
        # A library the build links (scripts/setup-debian installs its -dev
        # package) must be in Build-Depends, or a clean build environment
        # (sbuild, a fresh CI image) fails where this machine does not.
        with open(os.path.join(SOURCE, "scripts", "setup-debian"), encoding="utf-8") as f:
            wanted = set(re.findall(r"\b(lib[a-z0-9.+-]+-dev)\b", f.read()))
        wanted.discard("libclang-rt-14-dev")  # the fuzzers only (-DKALLAD_FUZZ=ON)
        with open(os.path.join(SOURCE, "debian", "control"), encoding="utf-8") as f:
            control = f.read()
        build_depends = re.search(r"(?ms)^Build-Depends:(.*?)^\S", control).group(1)
        named = set(re.findall(r"(lib[a-z0-9.+-]+-dev)", build_depends))
        self.assertEqual(sorted(wanted - named), [])

    def test_contents_and_maintainer_scripts(self):
        files = run(["dpkg-deb", "-c", self.deb]).stdout
        for path in ("./usr/sbin/kallad", "./lib/systemd/system/kallad.service",
                     "./lib/systemd/system/kallad@.service", "./etc/kallad/kallad.conf",
                     "./usr/share/man/man8/kallad.8.gz", "./usr/share/man/man5/kallad.conf.5.gz",
                     "./usr/share/kallad/templates/sv/invite.txt",
                     "./usr/share/kallad/templates/en/invite.txt",
                     "./usr/share/kallad/example/registrations.sql"):
            self.assertRegex(files, rf"(?m) {re.escape(path)}$")
        self.assertNotRegex(files, r"(?m)\./var/lib/kallad")  # StateDirectory= makes it
        ctrl = os.path.join(self.tmp, "control")
        run(["dpkg-deb", "-e", self.deb, ctrl])
        with open(os.path.join(ctrl, "conffiles"), encoding="utf-8") as f:
            self.assertIn("/etc/kallad/kallad.conf", f.read().split())
        with open(os.path.join(ctrl, "postinst"), encoding="utf-8") as f:
            postinst = f.read()
        self.assertIn("deb-systemd-helper enable 'kallad.service'", postinst)
        self.assertIn("deb-systemd-invoke $_dh_action 'kallad.service'", postinst)
        with open(os.path.join(ctrl, "postrm"), encoding="utf-8") as f:
            postrm = f.read()
        self.assertIn("rm -rf /var/lib/kallad /var/lib/private/kallad", postrm)
        self.assertIn("/var/lib/kallad-* /var/lib/private/kallad-*", postrm)

    def test_install_check_upgrade_remove_purge(self):
        lock = open(LOCK, "w")
        self.addCleanup(lock.close)
        fcntl.flock(lock, fcntl.LOCK_EX)  # another checkout's run on this machine
        if installed_version() is None and os.path.exists(BIN):
            self.fail(f"{BIN} exists but no kallad package owns it: a kallad installed "
                      "otherwise (cmake --install?) is in the way; remove it first")
        purge()  # a run that died half way
        self.addCleanup(purge)
        for path in (CONF, STATE):
            self.assertFalse(os.path.exists(path), f"{path} is there before the install")

        # Install, as an operator does.
        run(APT + ["install", self.deb])
        version = installed_version()
        self.assertIsNotNone(version)
        p = run(["kallad", "--version"], env=dict(os.environ, PATH="/usr/sbin:/usr/bin:/bin"))
        self.assertEqual(p.stdout.strip(), f"kallad {version}")
        for unit in ("kallad.service", "kallad@.service"):
            with open(f"/lib/systemd/system/{unit}", encoding="utf-8") as f:
                self.assertIn(f"ExecStart={BIN} --config /etc/kallad/", f.read())
        instance = os.path.join(self.tmp, "kallad@pkgtest.service")
        shutil.copy("/lib/systemd/system/kallad@.service", instance)
        for unit in ("/lib/systemd/system/kallad.service", instance):
            p = run(["systemd-analyze", "verify", "--man=no", unit], check=None)
            self.assertEqual(p.returncode, 0, p.stderr)
        # Enabled by dh_installsystemd's postinst (started too, where
        # systemd runs: not on this machine when it is not PID 1).
        self.assertEqual(os.readlink(WANTS), "/lib/systemd/system/kallad.service")

        # The installed example, before there are registrations: --check
        # says what is missing, and the daemon waits for it.
        db = f"{STATE}/registrations.db"
        p = run([BIN, "--check"], check=1)
        self.assertIn(f"{db}: cannot open the registration database", p.stderr)
        self.daemon_waits_for(db)

        # A second programme as the README sets it up for kallad@NAME.
        self.second_programme_waits()

        # The example registrations where the installed configuration
        # looks for them: --check passes.
        os.makedirs(STATE, exist_ok=True)
        con = sqlite3.connect(db)
        for f in ("registrations.sql", "participants.sql"):
            with open(f"/usr/share/kallad/example/{f}", encoding="utf-8") as fh:
                con.executescript(fh.read())
        con.commit()
        con.close()
        p = run([BIN, "--config", CONF, "--check"])
        self.assertIn("configuration OK", p.stdout)
        self.assertIn(f"state: {STATE}/state.db", p.stdout)

        # The operator edits the conffile; an upgrade keeps the edit and
        # asks nothing (stdin is /dev/null: a conffile prompt would fail).
        with open(CONF, "a", encoding="utf-8") as f:
            f.write("\n# edited by the operator\n")
        newer = self.repack(f"{version}+1")
        p = run(APT + ["install", newer])
        self.assertEqual(installed_version(), f"{version}+1")
        with open(CONF, encoding="utf-8") as f:
            self.assertIn("# edited by the operator", f.read())
        self.assertEqual(glob.glob("/etc/kallad/*.dpkg-*"), [])
        self.assertTrue(os.path.exists(db), "the upgrade lost the state directory")
        run([BIN, "--check"])

        # Remove: the program goes, configuration and state stay.
        owned = [line for line in run(["dpkg", "-L", "kallad"]).stdout.splitlines()
                 if os.path.isfile(line)]
        run(APT + ["remove", "kallad"])
        self.assertFalse(os.path.exists(BIN))
        self.assertTrue(os.path.exists(CONF))
        self.assertTrue(os.path.exists(db))

        # An instance's state as systemd lays it out with DynamicUser=:
        # /var/lib/kallad-NAME -> private/kallad-NAME.
        private = "/var/lib/private"
        made_private = not os.path.exists(private)
        os.makedirs(f"{private}/kallad-pkgtest", mode=0o700)
        open(f"{private}/kallad-pkgtest/state.db", "w").close()
        os.symlink("private/kallad-pkgtest", "/var/lib/kallad-pkgtest")
        if made_private:
            self.addCleanup(lambda: os.path.isdir(private) and not os.listdir(private)
                            and os.rmdir(private))

        # Purge: nothing left.
        run(APT + ["purge", "kallad"])
        self.assertIsNone(installed_version())
        left = [f for f in owned + [CONF, STATE, "/etc/kallad", f"{private}/kallad", WANTS,
                                    "/var/lib/kallad-pkgtest", f"{private}/kallad-pkgtest"]
                if os.path.lexists(f)]
        self.assertEqual(left, [])
        self.assertEqual(run(["dpkg-query", "-W", "kallad"], check=None).returncode, 1)

    def second_programme_waits(self):
        """README: /etc/kallad/NAME/kallad.conf from the installed one, its
        state in /var/lib/kallad-NAME; kallad@NAME runs it."""
        etc = "/etc/kallad/pkgtest"
        os.mkdir(etc)
        self.addCleanup(shutil.rmtree, etc, True)
        p = subprocess.run("sed 's|/var/lib/kallad/|/var/lib/kallad-pkgtest/|' "
                           f"/etc/kallad/kallad.conf > {etc}/kallad.conf", shell=True)
        self.assertEqual(p.returncode, 0)
        shutil.copy("/etc/kallad/programme.ics", etc)
        with open("/lib/systemd/system/kallad@.service", encoding="utf-8") as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/sbin/kallad --config /etc/kallad/%i/kallad.conf", unit)
        self.assertIn("StateDirectory=kallad-%i\n", unit)
        self.daemon_waits_for("/var/lib/kallad-pkgtest/registrations.db", f"{etc}/kallad.conf")
        shutil.rmtree(etc)  # before the purge, which removes /etc/kallad when empty

    def daemon_waits_for(self, db, conf=CONF):
        """The installed binary on an installed configuration, as the
        units start it, with a stand-in notify socket."""
        path = os.path.join(self.tmp, "notify.sock")
        if os.path.exists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(10)
        self.addCleanup(sock.close)
        proc = subprocess.Popen([BIN, "--config", conf], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, NOTIFY_SOCKET=path))
        try:
            seen = ""
            while "READY=1" not in seen:
                seen += sock.recv(4096).decode() + "\n"
            self.assertIn(f"STATUS=waiting: no registration database at {db}", seen)
            time.sleep(0.5)
            self.assertIsNone(proc.poll())
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=10), 0)
            self.assertIn(f"no registration database at {db}: waiting", proc.stderr.read())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
        self.assertFalse(os.path.exists(db))

    def repack(self, version):
        """The same package under a higher version: an upgrade, to dpkg."""
        tree = os.path.join(self.tmp, "repack")
        run(["dpkg-deb", "-R", self.deb, tree])
        control = os.path.join(tree, "DEBIAN", "control")
        with open(control, encoding="utf-8") as f:
            text = f.read()
        with open(control, "w", encoding="utf-8") as f:
            f.write(re.sub(r"(?m)^Version: .*$", f"Version: {version}", text))
        deb = os.path.join(self.tmp, f"kallad_{version}.deb")
        run(["dpkg-deb", "--root-owner-group", "-b", tree, deb])
        return deb


if __name__ == "__main__":
    preconditions()
    unittest.main(verbosity=2)
