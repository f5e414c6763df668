/* message_internal.h: what building a message (message.c) and the
 * per-pass cache of what its recipients share (message_cache.c) share.
 * Not for use outside them. */
#ifndef KALLAD_MESSAGE_INTERNAL_H
#define KALLAD_MESSAGE_INTERNAL_H

#include "ical.h"
#include "message.h"
#include "util.h"

/* message.c */

/* The variables every recipient of req's target shares: the programme,
 * the organizer, the sessions, and the session or deadline. */
void message_set_shared(struct tpl_vars *v, const struct config *cfg,
			const struct calendar *cal, const struct message_req *req,
			const char *lang);
/* Header lines (with their CRLF) that depend on the configuration or the
 * time alone; reply-to "" when there is none. The caller frees them. */
char *message_from_line(const struct config *cfg);
char *message_reply_to_line(const struct config *cfg);
char *message_date_line(time_t now);

/* message_cache.c */

/* The calendar object up to its ATTENDEE (ical_build_head), and the
 * base64 of its first b64_src bytes: whole lines of 57 bytes, which
 * encode the same whatever attendee follows. */
struct cal_head {
	char *head;
	size_t head_len;
	struct strbuf b64;
	size_t b64_src;
};
void cal_head_fill(struct cal_head *h, const struct ical_req *r);
void cal_head_free(struct cal_head *h);

/* Entries hold for one config, calendar and templates: meeting others,
 * the cache starts over. */
void cache_use(struct message_cache *c, const struct config *cfg, const struct calendar *cal,
	       const struct templates *tpl);
/* The shared variables of req's language and target (message_set_shared). */
struct vars_entry;
struct vars_entry *cache_vars(struct message_cache *c, const struct config *cfg,
			      const struct calendar *cal, const struct message_req *req,
			      const char *lang);
const struct tpl_vars *cache_vars_of(const struct vars_entry *e);
/* The message's text and HTML (NULL when it has none) for the recipient's
 * v (whose parent is e's), quoted-printable, from bodies rendered ahead
 * for e's language and target. False when there is no such template. */
bool cache_bodies_qp(struct vars_entry *e, const struct templates *tpl, const char *fallback,
		     const char *message, const struct tpl_vars *v, char **text, char **html);
const struct cal_head *cache_cal_head(struct message_cache *c, const struct ical_req *r);
const char *cache_from_line(struct message_cache *c, const struct config *cfg);
const char *cache_reply_to_line(struct message_cache *c, const struct config *cfg);
const char *cache_date_line(struct message_cache *c, time_t now);

#endif
