#include "material.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The portable half of RESOLVE_BENEATH: one component at a time, no "..",
 * no symbolic link at all (O_NOFOLLOW), so nothing leads out. */
static int walk_beneath(int dirfd, const char *rel)
{
	char *copy = xstrdup(rel), *save = NULL, *part, *next;
	int cur = dup(dirfd), fd = -1;

	errno = EISDIR; /* what "." or "./" names, if nothing else goes wrong */
	part = strtok_r(copy, "/", &save);
	while (part && cur >= 0) {
		next = strtok_r(NULL, "/", &save);
		if (strcmp(part, "..") == 0) {
			errno = EXDEV;
			break;
		}
		if (strcmp(part, ".") != 0) {
			int flags = next ? O_PATH | O_DIRECTORY : O_RDONLY | O_NONBLOCK | O_NOCTTY;
			int nfd = openat(cur, part, flags | O_NOFOLLOW | O_CLOEXEC);

			if (nfd < 0)
				break;
			if (!next)
				fd = nfd;
			else {
				close(cur);
				cur = nfd;
			}
		}
		part = next;
	}
	if (cur >= 0) {
		int saved = errno;
		close(cur);
		errno = saved;
	}
	free(copy);
	return fd;
}

static int open_beneath(const char *dir, const char *rel)
{
	struct open_how how = {
		.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int fd, saved;

	if (dirfd < 0)
		return -2;
	fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	/* ENOSYS: a kernel before 5.6; EPERM: a seccomp filter that does not
	 * know the call. */
	if (fd < 0 && (errno == ENOSYS || errno == EPERM))
		fd = walk_beneath(dirfd, rel);
	saved = errno;
	close(dirfd);
	errno = saved;
	return fd;
}

/* An open regular file beneath dir, or -1 with *why. */
static int open_checked(const char *dir, const char *rel, char **why)
{
	struct stat st;
	int fd;

	*why = NULL;
	if (str_empty(rel)) {
		*why = xstrdup("is empty");
		return -1;
	}
	if (rel[0] == '/') {
		*why = xasprintf("is absolute; attachment paths are relative to [programme] material %s",
				 dir);
		return -1;
	}
	fd = open_beneath(dir, rel);
	if (fd == -2) {
		*why = xasprintf("cannot be read: [programme] material %s: %s", dir, strerror(errno));
		return -1;
	}
	if (fd < 0) {
		if (errno == EXDEV || errno == ELOOP)
			*why = xasprintf("leads out of [programme] material %s (through .. or a symbolic link)",
					 dir);
		else
			*why = xasprintf("cannot be read in [programme] material %s: %s", dir,
					 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why = xasprintf("is not a regular file in [programme] material %s", dir);
		close(fd);
		return -1;
	}
	return fd;
}

char *material_read(const char *dir, const char *rel, size_t *len, char **why)
{
	struct strbuf sb;
	char chunk[65536];
	ssize_t n;
	int fd = open_checked(dir, rel, why);

	if (fd < 0)
		return NULL;
	sb_init(&sb);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		sb_addn(&sb, chunk, (size_t)n);
	if (n < 0) {
		*why = xasprintf("cannot be read: %s", strerror(errno));
		close(fd);
		sb_free(&sb);
		return NULL;
	}
	close(fd);
	*len = sb.len;
	return sb_take(&sb);
}

char *material_problem(const char *dir, const char *rel)
{
	char *why;
	int fd = open_checked(dir, rel, &why);

	if (fd >= 0)
		close(fd);
	return why;
}

struct check_ctx {
	const struct programme *pg;
	struct errlist *errs;
};

static void check_participant(const struct participant *p, void *arg)
{
	struct check_ctx *c = arg;
	const struct registrations *reg = c->pg->reg;

	if (p->status == PS_CANCELLED)
		return; /* no message of theirs will carry a file */
	for (size_t m = 0; m < reg->n_attachment_messages; m++) {
		struct attachment *rows = NULL;
		size_t n = reg_attachments(reg, p->email, reg->attachment_messages[m], &rows);

		for (size_t i = 0; n != REG_ATTACHMENTS_FAILED && i < n; i++) {
			char *why = material_problem(c->pg->cfg->material, rows[i].path);

			if (why)
				errlist_add(c->errs, "%s: attachments row (%s, %s): path \"%s\" %s",
					    reg->path, rows[i].email, rows[i].message, rows[i].path, why);
			free(why);
		}
		reg_attachments_free(rows, n == REG_ATTACHMENTS_FAILED ? 0 : n);
	}
}

void material_check(const struct programme *pg, struct errlist *errs)
{
	struct check_ctx c = {pg, errs};

	if (pg->reg && pg->reg->n_attachment_messages)
		reg_each(pg->reg, check_participant, NULL, &c);
	else if (pg->reg && !pg->reg->db)
		for (size_t i = 0; i < pg->reg->n_attachments; i++) {
			const struct attachment *a = &pg->reg->attachments[i];
			char *why = material_problem(pg->cfg->material, a->path);

			if (why)
				errlist_add(errs, "attachments row (%s, %s): path \"%s\" %s", a->email,
					    a->message, a->path, why);
			free(why);
		}
}
