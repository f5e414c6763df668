/* message.h: a whole RFC 5322 message for one delivery: template text,
 * iCalendar part and MIME structure (SPEC §2, INTEROP.md). Pure: the same
 * inputs and `now` give the same bytes. */
#ifndef KALLAD_MESSAGE_H
#define KALLAD_MESSAGE_H

#include "calendar.h"
#include "config.h"
#include "registrations.h"
#include "template.h"

#include <stddef.h>
#include <time.h>

struct message_req {
	const char *message;             /* template name */
	const struct participant *p;
	const struct session *session;   /* NULL unless the message concerns one */
	const struct deadline *deadline; /* NULL unless a deadline reminder */
	const struct session *previous;  /* an update: the session as the participant
					    had it (state_session_previous), or NULL */
	int sequence;                    /* SEQUENCE for the calendar part */
	const char *key;                 /* delivery key: the Message-ID derives from it */
	const char *organizer;           /* ORGANIZER's address; NULL: [organizer] email */
	const char *id_salt;             /* the programme's salt of Message-IDs, or NULL */
	const char *id_from;             /* the address whose domain Message-IDs take;
					    NULL: [organizer] email */
	time_t now;                      /* Date: and DTSTAMP */
	struct message_cache *cache;     /* NULL, or what earlier messages of
					    this pass made (message_cache_new) */
};

/* What the messages of one pass share, made once and kept for the next
 * message to the same target: per language and session or deadline, the
 * template variables (the dates formatted in words, the sessions list);
 * per session, method, SEQUENCE and DTSTAMP, the calendar object up to
 * its ATTENDEE and most of its base64; the Date, From and Reply-To
 * header lines. Entries are keyed by the target's content, not its
 * address, so a changed session never meets an old entry. Valid for one
 * config, calendar and templates (a cache meeting others starts over):
 * make one per pass and free it at its end. Messages are the same bytes
 * with a cache or without. */
struct message_cache *message_cache_new(void);
void message_cache_free(struct message_cache *c);

/* Builds the message with CRLF line ends. Returns bytes the caller frees
 * (length in *len), or NULL with a line in errs naming the delivery and
 * what is wrong. Invite-like messages (invite, session-reminder, update)
 * carry a REQUEST, cancel a CANCEL; material carries reg's attachments for
 * the participant. */
char *message_build(const struct config *cfg, const struct calendar *cal,
		    const struct registrations *reg, const struct templates *tpl,
		    const struct message_req *req, size_t *len, struct errlist *errs);

/* The calendar part a message carries to p: a REQUEST (an invite, update
 * or session reminder, any other message about a session but material),
 * a CANCEL, or none (material, a deadline reminder; a REQUEST's message to
 * one who is not registered: kallad follows only what they hold). */
enum calpart { CAL_NONE, CAL_REQUEST, CAL_CANCEL };
enum calpart message_calpart(const char *message, bool has_session,
			     const struct participant *p);

/* "<hash@domain>" for a delivery key and the programme's salt
 * (state_message_id_salt: NULL or "" for none), domain from organizer_email
 * (the one kept with the salt): the same for every attempt of one delivery, different for the
 * same key in another programme. */
char *message_id(const char *organizer_email, const char *key, const char *salt);
/* Whether id (a Message-ID without <>) is the one message_id() makes for
 * key and salt, whatever the domain. */
bool message_id_is(const char *id, const char *key, const char *salt);

#endif
