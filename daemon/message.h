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
	time_t now;                      /* Date: and DTSTAMP */
};

/* Builds the message with CRLF line ends. Returns bytes the caller frees
 * (length in *len), or NULL with a line in errs naming the delivery and
 * what is wrong. Invite-like messages (invite, session-reminder, update)
 * carry a REQUEST, cancel a CANCEL; material carries reg's attachments for
 * the participant. */
char *message_build(const struct config *cfg, const struct calendar *cal,
		    const struct registrations *reg, const struct templates *tpl,
		    const struct message_req *req, size_t *len, struct errlist *errs);

/* "<hash@domain>" for a delivery key, domain from the organizer address. */
char *message_id(const struct config *cfg, const char *key);

#endif
