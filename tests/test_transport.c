/* test_transport.c: the transport against real servers on loopback,
 * started here as subprocesses: Postfix's smtp-sink (with its failure
 * injection) and tests/smtp_tls_server.py (aiosmtpd with STARTTLS + AUTH),
 * and the Maildir outbox. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "transport.h"
#include "config.h"
#include "util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SINK "/usr/sbin/smtp-sink"
#define PYTHON "/usr/bin/python3"
#define FROM "Programmet <program@example.org>"
#define UNUSED __attribute__((unused))

static char top[64];  /* this run's temporary directory */
static char cert[128], key[128];
static pid_t servers[8];
static size_t n_servers;

/* ---- processes and ports ------------------------------------------------ */

static void kill_servers(void)
{
	for (size_t i = 0; i < n_servers; i++) {
		int st;
		kill(servers[i], SIGTERM);
		for (int k = 0; k < 300 && waitpid(servers[i], &st, WNOHANG) == 0; k++)
			usleep(10000);
		if (kill(servers[i], 0) == 0) {
			kill(servers[i], SIGKILL);
			waitpid(servers[i], &st, 0);
		}
	}
	n_servers = 0;
}

static pid_t spawn(char *const argv[], const char *out)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		/* Dies with us even if we crash (lost when smtp-sink drops root). */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	assert_true(n_servers < ARRAY_SIZE(servers));
	servers[n_servers++] = pid;
	return pid;
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Waits for a LISTEN socket on the port by reading /proc/net/tcp rather
 * than connecting: a probe connection would count as a session in
 * smtp-sink's counters, which the reuse test reads. */
static void wait_listening(int port)
{
	char want[32];

	snprintf(want, sizeof(want), ":%04X", port);
	for (int i = 0; i < 1000; i++) {
		FILE *f = fopen("/proc/net/tcp", "r");
		char line[512];
		assert_non_null(f);
		while (fgets(line, sizeof(line), f)) {
			char local[64], remote[64], st[8];
			if (sscanf(line, "%*d: %63s %63s %7s", local, remote, st) == 3 &&
			    strlen(local) > 5 && strcmp(local + strlen(local) - 5, want) == 0 &&
			    strcmp(st, "0A") == 0) {
				fclose(f);
				return;
			}
		}
		fclose(f);
		usleep(10000);
	}
	fail_msg("nothing listens on port %d after 10 s", port);
}

static char *path_in(const char *name)
{
	return xasprintf("%s/%s", top, name);
}

static char *make_dir(const char *name)
{
	char *d = path_in(name);
	assert_int_equal(mkdir(d, 0777), 0);
	chmod(d, 0777); /* smtp-sink runs as nobody when we are root */
	return d;
}

/* smtp-sink with extra options, dumping each message under dir. */
static int start_sink(const char *dir, const char *stdout_name, char *const opts[])
{
	int port = free_port();
	char *addr = xasprintf("127.0.0.1:%d", port);
	char *dump = xasprintf("%s/m.", dir);
	char *out = path_in(stdout_name);
	char *argv[24] = {SINK, "-c", "-d", dump};
	size_t n = 4;

	if (geteuid() == 0) {
		argv[n++] = "-u";
		argv[n++] = "nobody";
	}
	for (size_t i = 0; opts && opts[i]; i++)
		argv[n++] = opts[i];
	argv[n++] = addr;
	argv[n++] = "10";
	argv[n] = NULL;
	spawn(argv, out);
	wait_listening(port);
	free(addr);
	free(dump);
	free(out);
	return port;
}

static int start_py_with(const char *dir, bool plain, const char *slow_first,
			 const char *const extra[])
{
	int port = free_port();
	char portbuf[16];
	char *script = xasprintf("%s/tests/smtp_tls_server.py", SOURCE_DIR);
	char *log = xasprintf("%s.log", dir);
	char *argv[16] = {PYTHON, script, "--port", portbuf, "--dir", (char *)dir};
	size_t n = 6;

	snprintf(portbuf, sizeof(portbuf), "%d", port);
	if (plain)
		argv[n++] = "--plain";
	else {
		argv[n++] = "--cert";
		argv[n++] = cert;
		argv[n++] = "--key";
		argv[n++] = key;
	}
	if (slow_first) {
		argv[n++] = "--slow-first";
		argv[n++] = (char *)slow_first;
	}
	for (size_t i = 0; extra && extra[i] && n < ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	spawn(argv, log);
	wait_listening(port);
	free(script);
	free(log);
	return port;
}

static int start_py(const char *dir, bool plain, const char *slow_first)
{
	return start_py_with(dir, plain, slow_first, NULL);
}

/* ---- configuration and files ------------------------------------------- */

struct tcfg {
	struct config cfg;
	char url[64];
};

static void tcfg_init(struct tcfg *t, int port, bool tls, int timeout)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->url, sizeof(t->url), "smtp://127.0.0.1:%d", port);
	t->cfg.smtp_url = t->url;
	t->cfg.smtp_tls_required = tls;
	t->cfg.from = FROM;
	t->cfg.timeout = timeout;
	t->cfg.end_of_data_timeout = timeout;
	t->cfg.idle_timeout = 30;
}

/* Over TLS to the aiosmtpd server on port, which trusts our certificate,
 * as user "kallad" with the password in the file pw. */
static void tcfg_tls_auth(struct tcfg *t, int port, char *pw)
{
	tcfg_init(t, port, true, 5);
	t->cfg.smtp_user = "kallad";
	t->cfg.smtp_password = pw;
	setenv("KALLAD_SMTP_CAINFO", cert, 1);
}

static char *write_secret(const char *name, const char *content, mode_t mode)
{
	char *p = path_in(name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	assert_int_equal(chmod(p, mode), 0);
	return p;
}

static char *slurp(const char *path, size_t *len)
{
	size_t n;
	char *s = read_file(path, &n);
	if (len)
		*len = n;
	return s;
}

/* slurp() of the file name in dir (what a server there wrote). */
static char *slurp_in(const char *dir, const char *name, size_t *len)
{
	char *p = xasprintf("%s/%s", dir, name);
	char *s = slurp(p, len);

	free(p);
	return s;
}

/* The smtp-sink dump (LF line ends, its own headers first) whose
 * X-Rcpt-Args names rcpt, polling a while: the sink may write after it
 * replies. */
static char *sink_dump_for(const char *dir, const char *rcpt)
{
	char *want = xasprintf("X-Rcpt-Args: <%s>\n", rcpt);
	char *found = NULL;

	for (int i = 0; i < 300 && !found; i++) {
		DIR *d = opendir(dir);
		struct dirent *e;
		assert_non_null(d);
		while (!found && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char *s = slurp_in(dir, e->d_name, NULL);
			if (s && strstr(s, want))
				found = s;
			else
				free(s);
		}
		closedir(d);
		if (!found)
			usleep(10000);
	}
	free(want);
	return found;
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* smtp-sink writes the body with LF and an empty line after it. */
static void assert_sink_body(const char *dump, const char *msg)
{
	struct strbuf lf;

	sb_init(&lf);
	for (const char *c = msg; *c; c++)
		if (!(c[0] == '\r' && c[1] == '\n'))
			sb_addc(&lf, *c);
	sb_addc(&lf, '\n');
	size_t dl = strlen(dump);
	assert_true(dl >= lf.len);
	assert_string_equal(dump + dl - lf.len, lf.buf);
	sb_free(&lf);
}

/* The last "sess=N quit=N mesg=N" record smtp-sink -c printed. */
static bool sink_counters(const char *out_name, const char *want)
{
	char *p = path_in(out_name);
	bool ok = false;

	for (int i = 0; i < 300 && !ok; i++) {
		char *s = slurp(p, NULL);
		if (s) {
			char *end = s + strlen(s);
			while (end > s && end[-1] == '\r')
				*--end = '\0';
			char *rec = strrchr(s, '\r');
			ok = strcmp(rec ? rec + 1 : s, want) == 0;
			if (!ok && i == 299)
				fprintf(stderr, "smtp-sink counters: \"%s\", want \"%s\"\n",
					rec ? rec + 1 : s, want);
		}
		free(s);
		if (!ok)
			usleep(10000);
	}
	free(p);
	return ok;
}

static struct transport *open_ok(const struct config *cfg)
{
	struct errlist errs = {0};
	struct transport *t = transport_open(cfg, &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "transport_open: %s\n", errs.items[i]);
	errlist_free(&errs);
	assert_non_null(t);
	return t;
}

static enum send_result send1(struct transport *t, const char *rcpt, const char *msg,
			      char **detail)
{
	return transport_send(t, rcpt, msg, strlen(msg), detail);
}

#define MSG(n) \
	"From: " FROM "\r\nTo: <rcpt" #n "@example.net>\r\nSubject: test " #n "\r\n" \
	"Message-ID: <" #n "@example.org>\r\n\r\nBody of message " #n ".\r\n"

/* Lines a careless client would end the data with, or lose a dot from. */
static const char dots_msg[] =
	"From: " FROM "\r\nTo: <dots@example.net>\r\nSubject: dots\r\n\r\n"
	".\r\n.foo\r\n..bar\r\n. \r\nlast line\r\n";

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- smtp-sink --------------------------------------------------------- */

static void test_sink_three_messages_one_connection(void **state UNUSED)
{
	char *dir = make_dir("three");
	int port = start_sink(dir, "three.out", NULL);
	struct tcfg c;
	char *detail = NULL;

	tcfg_init(&c, port, false, 5);
	struct transport *t = open_ok(&c.cfg);
	assert_int_equal(send1(t, "rcpt1@example.net", MSG(1), &detail), SEND_OK);
	assert_true(strncmp(detail, "250", 3) == 0);
	free(detail);
	assert_int_equal(send1(t, "dots@example.net", dots_msg, &detail), SEND_OK);
	free(detail);
	assert_int_equal(send1(t, "rcpt3@example.net", MSG(3), &detail), SEND_OK);
	free(detail);
	assert_false(transport_should_slow(t));
	transport_close(t); /* QUIT ends the one session */

	const char *rcpts[] = {"rcpt1@example.net", "dots@example.net", "rcpt3@example.net"};
	const char *msgs[] = {MSG(1), dots_msg, MSG(3)};
	for (size_t i = 0; i < 3; i++) {
		char *dump = sink_dump_for(dir, rcpts[i]);
		assert_non_null(dump);
		assert_non_null(strstr(dump, "X-Mail-Args: <program@example.org>"));
		assert_sink_body(dump, msgs[i]);
		free(dump);
	}
	assert_int_equal(count_entries(dir), 3);
	/* One session for three messages, and it ended with our QUIT. */
	assert_true(sink_counters("three.out", "sess=1 quit=1 mesg=3"));
	free(dir);
}

/* [smtp] connections = 3: one send alone until one went through, then
 * three at once, each outcome handed back with its own tag; three
 * sessions, each ended with QUIT. */
static void test_sink_pool_of_three(void **state UNUSED)
{
	static const char *const rcpts[] = {"rcpt1@example.net", "rcpt2@example.net",
					    "rcpt3@example.net", "rcpt4@example.net",
					    "rcpt5@example.net", "rcpt6@example.net",
					    "rcpt7@example.net"};
	const char *msgs[] = {MSG(1), MSG(2), MSG(3), MSG(4), MSG(5), MSG(6), MSG(7)};
	char *dir = make_dir("pool");
	int port = start_sink(dir, "pool.out", NULL);
	bool seen[7] = {false};
	struct outcome o;
	struct tcfg c;

	tcfg_init(&c, port, false, 5);
	c.cfg.smtp_connections = 3;
	struct transport *t = open_ok(&c.cfg);
	assert_int_equal(transport_connections(t), 3);
	assert_true(transport_can_start(t));
	transport_start(t, rcpts[0], msgs[0], strlen(msgs[0]), &seen[0]);
	/* Not proven yet: a wrong password would be tried once, not thrice. */
	assert_false(transport_can_start(t));
	assert_true(transport_finish(t, &o));
	assert_ptr_equal(o.tag, &seen[0]);
	assert_int_equal(o.result, SEND_OK);
	free(o.detail);
	seen[0] = true;
	size_t next = 1;
	while (next < 7 || transport_in_flight(t) > 0) {
		while (next < 7 && transport_can_start(t)) {
			transport_start(t, rcpts[next], msgs[next], strlen(msgs[next]), &seen[next]);
			next++;
		}
		assert_true(transport_in_flight(t) <= 3);
		assert_true(transport_finish(t, &o));
		assert_int_equal(o.result, SEND_OK);
		assert_false(*(bool *)o.tag); /* each outcome once */
		*(bool *)o.tag = true;
		free(o.detail);
	}
	assert_false(transport_finish(t, &o)); /* nothing in flight */
	transport_close(t);
	for (size_t i = 0; i < 7; i++) {
		char *dump = sink_dump_for(dir, rcpts[i]);
		assert_true(seen[i]);
		assert_non_null(dump);
		assert_sink_body(dump, msgs[i]);
		free(dump);
	}
	assert_int_equal(count_entries(dir), 7);
	/* Three connections (the first one's session, two more once it went
	 * through), every one ended with our QUIT. */
	assert_true(sink_counters("pool.out", "sess=3 quit=3 mesg=7"));
	free(dir);
}

/* A send starts while another slot's thread has opened its connection and
 * awaits the reply to ".": the caller picks among the idle slots only. It
 * read every slot's "connected", which the running slot's thread writes
 * when it opens a connection: a data race that a build with
 * -fsanitize=thread reports (and fails this test on) every time, as the
 * write comes 0.3 s before the read here with nothing between them. */
static void test_sink_pool_start_while_another_connects(void **state UNUSED)
{
	static const char *const rcpts[] = {"rcpt1@example.net", "rcpt2@example.net",
					    "rcpt3@example.net", "rcpt4@example.net"};
	const char *msgs[] = {MSG(1), MSG(2), MSG(3), MSG(4)};
	char *dir = make_dir("poolconnect");
	char *opts[] = {"-W", ".:1", NULL};
	int port = start_sink(dir, "poolconnect.out", opts);
	bool seen[4] = {false};
	struct outcome o;
	struct tcfg c;

	tcfg_init(&c, port, false, 5);
	c.cfg.smtp_connections = 3;
	struct transport *t = open_ok(&c.cfg);
	transport_start(t, rcpts[0], msgs[0], strlen(msgs[0]), &seen[0]);
	assert_true(transport_finish(t, &o));
	assert_int_equal(o.result, SEND_OK);
	free(o.detail);
	seen[0] = true;
	/* The first on the warm connection, the second on a new one. */
	for (size_t i = 1; i <= 2; i++) {
		assert_true(transport_can_start(t));
		transport_start(t, rcpts[i], msgs[i], strlen(msgs[i]), &seen[i]);
	}
	usleep(300 * 1000); /* both connected, waiting for the reply to "." */
	assert_true(transport_can_start(t));
	transport_start(t, rcpts[3], msgs[3], strlen(msgs[3]), &seen[3]);
	assert_false(transport_can_start(t));
	for (size_t i = 1; i <= 3; i++) {
		assert_true(transport_finish(t, &o));
		assert_int_equal(o.result, SEND_OK);
		assert_false(*(bool *)o.tag); /* each outcome once */
		*(bool *)o.tag = true;
		free(o.detail);
	}
	assert_false(transport_finish(t, &o));
	transport_close(t);
	for (size_t i = 0; i < 4; i++) {
		char *dump = sink_dump_for(dir, rcpts[i]);
		assert_true(seen[i]);
		assert_non_null(dump);
		assert_sink_body(dump, msgs[i]);
		free(dump);
	}
	assert_true(sink_counters("poolconnect.out", "sess=3 quit=3 mesg=4"));
	free(dir);
}

static void expect_fault(char *const opts[], const char *name, enum send_result want,
			 enum relay_fault want_fault, const char *want_detail_prefix, bool want_slow)
{
	char *dir = make_dir(name);
	char *out = xasprintf("%s.out", name);
	int port = start_sink(dir, out, opts);
	struct tcfg c;
	char *detail = NULL;

	tcfg_init(&c, port, false, 5);
	struct transport *t = open_ok(&c.cfg);
	enum send_result r = send1(t, "rcpt1@example.net", MSG(1), &detail);
	fprintf(stderr, "%s: %s: %s\n", name, transport_result_name(r), detail);
	assert_int_equal(r, want);
	assert_true(strncmp(detail, want_detail_prefix, strlen(want_detail_prefix)) == 0);
	assert_int_equal(transport_should_slow(t), want_slow);
	assert_int_equal(transport_fault(t), want_fault);
	free(detail);
	transport_close(t);
	free(out);
	free(dir);
}

static void expect_failure(char *const opts[], const char *name, enum send_result want,
			   const char *want_detail_prefix, bool want_slow)
{
	expect_fault(opts, name, want, RELAY_NONE, want_detail_prefix, want_slow);
}

static void test_sink_soft_reject_rcpt(void **state UNUSED)
{
	char *opts[] = {"-r", "RCPT", NULL};
	expect_failure(opts, "soft", SEND_TRANSIENT, "450 4.3.0 Error: command failed (at RCPT)",
		       false);
}

static void test_sink_hard_reject_rcpt(void **state UNUSED)
{
	char *opts[] = {"-f", "RCPT", "-B",
			"550 5.1.1 <rcpt1@example.net>: Recipient address rejected", NULL};
	expect_failure(opts, "hard", SEND_PERMANENT,
		       "550 5.1.1 <rcpt1@example.net>: Recipient address rejected (at RCPT)", false);
}

/* A refusal at MAIL FROM is the relay's, not the message's; this one
 * also asks to slow down. */
static void test_sink_rate_limit_words(void **state UNUSED)
{
	char *opts[] = {"-r", "MAIL", "-b", "450 4.7.1 Too many messages, try again later", NULL};
	expect_fault(opts, "rate", SEND_RELAY, RELAY_SENDER, "450 4.7.1 Too many messages", true);
}

/* Greylisting is about one recipient: no sign of a limit, though 4.7.1. */
static void test_sink_greylisted_rcpt(void **state UNUSED)
{
	char *opts[] = {"-r", "RCPT", "-b",
			"451 4.7.1 <rcpt1@example.net>: Recipient address rejected: Greylisted, "
			"try again later", NULL};
	expect_failure(opts, "grey", SEND_TRANSIENT, "451 4.7.1 <rcpt1@example.net>", false);
}

/* Postfix's anvil at RCPT: the message waits, and the relay is slowed. */
static void test_sink_rate_limit_at_rcpt(void **state UNUSED)
{
	char *opts[] = {"-r", "RCPT", "-b", "450 4.7.1 Error: too much mail from 127.0.0.1", NULL};
	expect_failure(opts, "rcptrate", SEND_TRANSIENT, "450 4.7.1 Error: too much mail", true);
}

/* "rate" inside a word is no sign of a limit. */
static void test_sink_separate_is_not_rate(void **state UNUSED)
{
	char *opts[] = {"-r", "RCPT", "-b", "450 4.2.0 Mailbox on a separate host is busy", NULL};
	expect_failure(opts, "separate", SEND_TRANSIENT, "450 4.2.0 Mailbox", false);
}

static void test_sink_sender_refused(void **state UNUSED)
{
	char *opts[] = {"-f", "MAIL", "-B",
			"553 5.7.1 <program@example.org>: Sender address rejected: not owned by user",
			NULL};
	expect_fault(opts, "sender", SEND_RELAY, RELAY_SENDER, "553 5.7.1 <program@example.org>",
		     false);
}

/* A refusal at DATA (before any data) is about the message. */
static void test_sink_refused_at_data(void **state UNUSED)
{
	char *opts[] = {"-f", "DATA", "-B", "554 5.5.1 Error: no valid recipients", NULL};
	expect_failure(opts, "atdata", SEND_PERMANENT, "554 5.5.1 Error: no valid recipients (at DATA)",
		       false);
}

static void test_sink_disconnect_after_dot(void **state UNUSED)
{
	char *opts[] = {"-q", ".", NULL};
	expect_failure(opts, "dropdot", SEND_UNKNOWN, "no reply after end of data", false);
}

static void test_sink_421_at_mail(void **state UNUSED)
{
	char *opts[] = {"-Q", "MAIL", NULL};
	expect_fault(opts, "q421", SEND_RELAY, RELAY_CONNECT, "421", true);
}

/* RFC 5321 4.5.3.2.6: the reply to "." may take ten minutes, though
 * every other reply must come within [smtp] timeout. */
static void test_end_of_data_timeout_is_its_own(void **state UNUSED)
{
	char *dir = make_dir("eod");
	char *opts[] = {"-W", ".:3", NULL};
	int port = start_sink(dir, "eod.out", opts);
	struct tcfg c;
	char *detail = NULL;

	tcfg_init(&c, port, false, 1);
	c.cfg.end_of_data_timeout = 10;
	struct transport *t = open_ok(&c.cfg);
	double t0 = now_s();
	assert_int_equal(send1(t, "rcpt1@example.net", MSG(1), &detail), SEND_OK);
	assert_true(now_s() - t0 >= 2.9);
	free(detail);
	transport_close(t);
	free(dir);
}

static void test_sink_hard_reject_after_dot(void **state UNUSED)
{
	char *opts[] = {"-f", ".", "-B", "554 5.7.1 Message refused", NULL};
	expect_failure(opts, "harddot", SEND_PERMANENT, "554 5.7.1 Message refused (at end of data)",
		       false);
}

/* The reply to "." comes after our timeout: the server has the message,
 * we cannot know it. */
static void test_sink_slow_reply_to_dot(void **state UNUSED)
{
	char *dir = make_dir("slowdot");
	char *opts[] = {"-W", ".:4", NULL};
	int port = start_sink(dir, "slowdot.out", opts);
	struct tcfg c;
	char *detail = NULL;

	tcfg_init(&c, port, false, 2);
	struct transport *t = open_ok(&c.cfg);
	double t0 = now_s();
	assert_int_equal(send1(t, "rcpt1@example.net", MSG(1), &detail), SEND_UNKNOWN);
	double took = now_s() - t0;
	assert_true(took >= 1.9 && took < 3.9);
	assert_non_null(strstr(detail, "may have the message"));
	free(detail);
	char *dump = sink_dump_for(dir, "rcpt1@example.net");
	assert_non_null(dump); /* indeed it has */
	free(dump);
	transport_close(t);
	free(dir);
}

static void test_connection_refused(void **state UNUSED)
{
	struct tcfg c;
	char *detail = NULL;

	tcfg_init(&c, free_port(), false, 5);
	struct transport *t = open_ok(&c.cfg);
	assert_int_equal(send1(t, "rcpt1@example.net", MSG(1), &detail), SEND_RELAY);
	assert_int_equal(transport_fault(t), RELAY_CONNECT);
	assert_non_null(strstr(detail, "(at connect)"));
	free(detail);
	transport_close(t);
}

/* ---- aiosmtpd ------------------------------------------------------------ */

/* The reply to the first "." comes late; the next message must go over a
 * fresh connection and get its own reply, "queued as 2". Reusing the old
 * connection would read the late "queued as 1" as the reply to MAIL and
 * every later reply off by one. */
static void test_fresh_connection_after_timeout(void **state UNUSED)
{
	char *dir = make_dir("fresh");
	int port = start_py(dir, true, "4");
	struct tcfg c;
	char *detail = NULL;

	tcfg_init(&c, port, false, 2);
	struct transport *t = open_ok(&c.cfg);
	assert_int_equal(send1(t, "rcpt1@example.net", MSG(1), &detail), SEND_UNKNOWN);
	free(detail);
	assert_int_equal(send1(t, "rcpt2@example.net", MSG(2), &detail), SEND_OK);
	assert_string_equal(detail, "250 2.0.0 Ok: queued as 2");
	free(detail);
	assert_int_equal(send1(t, "rcpt3@example.net", MSG(3), &detail), SEND_OK);
	assert_string_equal(detail, "250 2.0.0 Ok: queued as 3");
	free(detail);
	transport_close(t);

	const char *msgs[] = {MSG(1), MSG(2), MSG(3)};
	for (int i = 0; i < 3; i++) {
		char name[16], *got;

		snprintf(name, sizeof(name), "%d.eml", i + 1);
		got = slurp_in(dir, name, NULL);
		assert_non_null(got);
		assert_string_equal(got, msgs[i]);
		free(got);
	}
	free(dir);
}

static void test_tls_auth_ok(void **state UNUSED)
{
	char *dir = make_dir("tls");
	int port = start_py(dir, false, NULL);
	char *pw = write_secret("pw600", "secret\n", 0600);
	struct tcfg c;
	char *detail = NULL;

	tcfg_tls_auth(&c, port, pw);
	struct transport *t = open_ok(&c.cfg);
	assert_int_equal(send1(t, "dots@example.net", dots_msg, &detail), SEND_OK);
	assert_string_equal(detail, "250 2.0.0 Ok: queued as 1");
	free(detail);
	assert_int_equal(send1(t, "rcpt2@example.net", MSG(2), &detail), SEND_OK);
	free(detail);
	transport_close(t);

	size_t len;
	char *got = slurp_in(dir, "1.eml", &len);
	assert_non_null(got);
	assert_int_equal(len, strlen(dots_msg)); /* byte for byte, CRLF and dots */
	assert_memory_equal(got, dots_msg, len);
	free(got);
	got = slurp_in(dir, "1.env", NULL);
	assert_string_equal(got, "from program@example.org\nrcpt dots@example.net\n"
				 "tls yes\nuser kallad\n");
	free(got);
	free(pw);
	free(dir);
}

static void test_tls_wrong_password(void **state UNUSED)
{
	char *dir = make_dir("badpw");
	int port = start_py(dir, false, NULL);
	char *pw = write_secret("pwbad", "not-the-secret", 0600);
	struct tcfg c;
	char *detail = NULL;

	tcfg_tls_auth(&c, port, pw);
	struct transport *t = open_ok(&c.cfg);
	assert_int_equal(send1(t, "rcpt1@example.net", MSG(1), &detail), SEND_RELAY);
	assert_int_equal(transport_fault(t), RELAY_AUTH);
	fprintf(stderr, "wrong password: %s\n", detail);
	assert_non_null(strstr(detail, "authentication failed"));
	assert_non_null(strstr(detail, "535"));
	assert_null(strstr(detail, "not-the-secret"));
	free(detail);
	transport_close(t);
	char *eml = xasprintf("%s/1.eml", dir);
	assert_int_equal(access(eml, F_OK), -1); /* nothing was taken */
	free(eml);
	free(pw);
	free(dir);
}

/* A server that answers in the middle of a big message and closes: its
 * reply is read by its code, and a message whose "." never went out is
 * never "unknown". */
static void test_reply_in_the_middle_of_the_data(void **state UNUSED)
{
	char *dir = make_dir("middata");
	const char *extra[] = {"--reject-in-data", "550 5.7.1 Message content rejected", NULL};
	int port = start_py_with(dir, true, NULL, extra);
	struct tcfg c;
	struct strbuf big;
	char *detail = NULL;

	sb_init(&big);
	sb_add(&big, "From: " FROM "\r\nTo: <rcpt1@example.net>\r\nSubject: big\r\n\r\n");
	while (big.len < 48 * 1024)
		sb_add(&big, "0123456789012345678901234567890123456789012345678901234567890123456789\r\n");
	tcfg_init(&c, port, false, 5);
	struct transport *t = open_ok(&c.cfg);
	for (int i = 0; i < 5; i++) {
		enum send_result r = transport_send(t, "rcpt1@example.net", big.buf, big.len, &detail);
		fprintf(stderr, "mid-data %d: %s: %s\n", i, transport_result_name(r), detail);
		assert_true(r == SEND_PERMANENT || r == SEND_TRANSIENT);
		if (r == SEND_PERMANENT)
			assert_non_null(strstr(detail, "550 5.7.1 Message content rejected"));
		free(detail);
	}
	transport_close(t);
	sb_free(&big);
	free(dir);
}

/* The relay closed the connection kept from before with its idle-timeout
 * 421 (over TLS, so libcurl still thinks it alive): the next message goes
 * over a new connection at once, without a fault. */
static void test_idle_421_reconnects_once(void **state UNUSED)
{
	char *dir = make_dir("idle");
	const char *extra[] = {"--idle", "1", NULL};
	int port = start_py_with(dir, false, NULL, extra);
	char *pw = write_secret("pwidle", "secret", 0600);
	struct tcfg c;
	char *detail = NULL;

	tcfg_tls_auth(&c, port, pw);
	struct transport *t = open_ok(&c.cfg);
	assert_int_equal(send1(t, "rcpt1@example.net", MSG(1), &detail), SEND_OK);
	free(detail);
	sleep(2);
	assert_int_equal(send1(t, "rcpt2@example.net", MSG(2), &detail), SEND_OK);
	assert_string_equal(detail, "250 2.0.0 Ok: queued as 2");
	free(detail);
	transport_close(t);
	char *log = slurp_in(dir, "events", NULL);
	assert_non_null(log);
	assert_non_null(strstr(log, "idle 421"));
	free(log);
	free(pw);
	free(dir);
}

static void test_tls_untrusted_certificate(void **state UNUSED)
{
	char *dir = make_dir("untrusted");
	int port = start_py(dir, false, NULL);
	struct tcfg c;
	char *detail = NULL;

	tcfg_init(&c, port, true, 5);
	unsetenv("KALLAD_SMTP_CAINFO"); /* the system CAs do not know our cert */
	struct transport *t = open_ok(&c.cfg);
	assert_int_equal(send1(t, "rcpt1@example.net", MSG(1), &detail), SEND_RELAY);
	assert_int_equal(transport_fault(t), RELAY_TLS);
	fprintf(stderr, "untrusted: %s\n", detail);
	assert_non_null(strstr(detail, "certificate"));
	free(detail);
	transport_close(t);
	free(dir);
}

static void test_tls_required_but_not_offered(void **state UNUSED)
{
	char *dir = make_dir("nostarttls");
	int port = start_sink(dir, "nostarttls.out", NULL);
	struct tcfg c;
	char *detail = NULL;

	tcfg_init(&c, port, true, 5);
	struct transport *t = open_ok(&c.cfg);
	assert_int_equal(send1(t, "rcpt1@example.net", MSG(1), &detail), SEND_RELAY);
	assert_int_equal(transport_fault(t), RELAY_TLS);
	fprintf(stderr, "no STARTTLS: %s\n", detail);
	assert_non_null(strstr(detail, "server offers no STARTTLS"));
	free(detail);
	transport_close(t);
	usleep(100000);
	assert_int_equal(count_entries(dir), 0); /* nothing went in clear */
	free(dir);
}

/* ---- passwords ------------------------------------------------------------ */

static void test_password_file_open_to_others(void **state UNUSED)
{
	char *pw = write_secret("pw644", "secret\n", 0644);
	struct errlist errs = {0};
	struct tcfg c;

	tcfg_init(&c, 25, true, 5);
	c.cfg.smtp_user = "kallad";
	c.cfg.smtp_password = pw;
	assert_null(transport_open(&c.cfg, &errs));
	assert_int_equal(errs.n, 1);
	fprintf(stderr, "0644: %s\n", errs.items[0]);
	assert_non_null(strstr(errs.items[0], pw));
	assert_non_null(strstr(errs.items[0], "0644"));
	assert_non_null(strstr(errs.items[0], "chmod 600"));
	assert_null(strstr(errs.items[0], "secret"));
	errlist_free(&errs);

	c.cfg.smtp_password = NULL; /* a user without a password is no AUTH at all */
	assert_null(transport_open(&c.cfg, &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.items[0], "[smtp] password: must be set together with user");
	errlist_free(&errs);
	free(pw);
}

static void test_password_from_credentials_directory(void **state UNUSED)
{
	char *dir = make_dir("cred");
	char *creds = make_dir("creddir");
	int port = start_py(dir, false, NULL);
	struct errlist errs = {0};
	struct tcfg c;
	char *detail = NULL;

	tcfg_init(&c, port, true, 5);
	c.cfg.smtp_user = "kallad";
	c.cfg.smtp_password = "smtp-password";

	unsetenv("CREDENTIALS_DIRECTORY");
	assert_null(transport_open(&c.cfg, &errs));
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.items[0], "CREDENTIALS_DIRECTORY"));
	errlist_free(&errs);

	/* systemd makes these files; their mode is not ours to judge. */
	char *f = write_secret("creddir/smtp-password", "secret\n", 0444);
	setenv("CREDENTIALS_DIRECTORY", creds, 1);
	setenv("KALLAD_SMTP_CAINFO", cert, 1);
	struct transport *t = open_ok(&c.cfg);
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(send1(t, "rcpt1@example.net", MSG(1), &detail), SEND_OK);
	free(detail);
	transport_close(t);
	char *got = slurp_in(dir, "1.env", NULL);
	assert_non_null(strstr(got, "user kallad\n"));
	free(got);
	free(f);
	free(creds);
	free(dir);
}

/* ---- outbox and input checks ---------------------------------------------- */

static void test_outbox(void **state UNUSED)
{
	struct config cfg = {0};
	char *statedir = path_in("var");
	char *statedb = xasprintf("%s/state.db", statedir);
	char *detail = NULL;

	cfg.from = FROM;
	cfg.state = statedb;
	struct transport *t = open_ok(&cfg);
	assert_int_equal(send1(t, "rcpt1@example.net", MSG(1), &detail), SEND_OK);
	char *newdir = xasprintf("%s/outbox/new/", statedir);
	assert_true(strncmp(detail, "written to ", 11) == 0);
	assert_true(strncmp(detail + 11, newdir, strlen(newdir)) == 0);
	size_t len;
	char *got = slurp(detail + 11, &len);
	assert_int_equal(len, strlen(MSG(1)));
	assert_memory_equal(got, MSG(1), len);
	free(got);
	free(detail);
	assert_int_equal(send1(t, "rcpt2@example.net", MSG(2), &detail), SEND_OK);
	free(detail);
	assert_false(transport_should_slow(t));
	transport_close(t);

	assert_int_equal(count_entries(newdir), 2);
	char *sub = xasprintf("%s/outbox/tmp", statedir);
	assert_int_equal(count_entries(sub), 0);
	free(sub);
	sub = xasprintf("%s/outbox/cur", statedir);
	assert_int_equal(count_entries(sub), 0);
	free(sub);
	free(newdir);
	free(statedb);
	free(statedir);
}

static void test_invalid_recipient_refused(void **state UNUSED)
{
	struct config cfg = {0};
	char *statedb = path_in("var2/state.db");
	char *detail = NULL;

	cfg.from = FROM;
	cfg.state = statedb;
	struct transport *t = open_ok(&cfg);
	const char *bad[] = {"a@b.example\r\nRCPT TO:<evil@x.example>", "<a@b.example>",
			     "no-at-sign", "a b@c.example", ""};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(send1(t, bad[i], MSG(1), &detail), SEND_PERMANENT);
		assert_non_null(strstr(detail, "invalid recipient"));
		free(detail);
	}
	transport_close(t);
	char *newdir = path_in("var2/outbox/new");
	assert_int_equal(count_entries(newdir), 0);
	free(newdir);
	free(statedb);
}

static void test_result_names(void **state UNUSED)
{
	assert_string_equal(transport_result_name(SEND_OK), "ok");
	assert_string_equal(transport_result_name(SEND_TRANSIENT), "transient");
	assert_string_equal(transport_result_name(SEND_PERMANENT), "permanent");
	assert_string_equal(transport_result_name(SEND_UNKNOWN), "unknown");
}

/* ---- fixture -------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st UNUSED, int flag UNUSED,
		    struct FTW *ftw UNUSED)
{
	remove(path); /* carry on: leave as little behind as possible */
	return 0;
}

static void cleanup(void)
{
	kill_servers();
	if (top[0])
		nftw(top, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	top[0] = '\0';
}

static int group_setup(void **state UNUSED)
{
	if (access(SINK, X_OK) != 0 || system(PYTHON " -c 'import aiosmtpd' 2>/dev/null") != 0) {
		fprintf(stderr, "needs " SINK " (Debian: postfix) and " PYTHON
				" with aiosmtpd (Debian: python3-aiosmtpd)\n");
		return -1;
	}
	snprintf(top, sizeof(top), "/tmp/kallad-transport-XXXXXX");
	if (!mkdtemp(top))
		return -1;
	chmod(top, 0755); /* smtp-sink runs as nobody when we are root */
	atexit(cleanup);
	snprintf(cert, sizeof(cert), "%s/cert.pem", top);
	snprintf(key, sizeof(key), "%s/key.pem", top);
	char *cmd = xasprintf("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
			      "-nodes -days 2 -subj /CN=localhost -addext "
			      "subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s -out %s "
			      ">/dev/null 2>&1",
			      key, cert);
	int rc = system(cmd);
	free(cmd);
	if (rc != 0) {
		fprintf(stderr, "openssl req failed: is openssl installed?\n");
		return -1;
	}
	return 0;
}

static int group_teardown(void **state UNUSED)
{
	cleanup();
	return 0;
}

/* Servers die with the test that started them, pass or fail. */
static int test_teardown(void **state UNUSED)
{
	kill_servers();
	return 0;
}

#define T(f) cmocka_unit_test_teardown(f, test_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_sink_three_messages_one_connection),
		T(test_sink_pool_of_three),
		T(test_sink_pool_start_while_another_connects),
		T(test_sink_soft_reject_rcpt),
		T(test_sink_hard_reject_rcpt),
		T(test_sink_rate_limit_words),
		T(test_sink_greylisted_rcpt),
		T(test_sink_rate_limit_at_rcpt),
		T(test_sink_separate_is_not_rate),
		T(test_sink_sender_refused),
		T(test_sink_refused_at_data),
		T(test_end_of_data_timeout_is_its_own),
		T(test_idle_421_reconnects_once),
		T(test_reply_in_the_middle_of_the_data),
		T(test_sink_disconnect_after_dot),
		T(test_sink_421_at_mail),
		T(test_sink_hard_reject_after_dot),
		T(test_sink_slow_reply_to_dot),
		T(test_connection_refused),
		T(test_fresh_connection_after_timeout),
		T(test_tls_auth_ok),
		T(test_tls_wrong_password),
		T(test_tls_untrusted_certificate),
		T(test_tls_required_but_not_offered),
		T(test_password_file_open_to_others),
		T(test_password_from_credentials_directory),
		T(test_outbox),
		T(test_invalid_recipient_refused),
		T(test_result_names),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
