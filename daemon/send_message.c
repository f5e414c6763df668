/* send_message.c: what each message of a programme must carry the same,
 * whatever changes between sends: the salt and domain of its Message-ID
 * (kept from the first send), each session's ORGANIZER (kept from its
 * first calendar), and the message built with them. */
#include "send_internal.h"

#include "log.h"
#include "message.h"

#include <stdlib.h>
#include <string.h>

/* The calendars of a session keep the ORGANIZER they were sent with
 * (INTEROP I9): said on each start and reload while it is not the
 * configured one. */
void warn_organizer(struct sender *s)
{
	const char *configured = s->pg->cfg->organizer_email;
	char *kept;

	if (!state_organizer_kept_elsewhere(s->st, configured, &kept))
		return;
	log_warn("[organizer] email is %s, but calendars already sent carry ORGANIZER %s: the "
		 "sessions in them keep it (a calendar ignores updates and cancels from another "
		 "organizer), and replies to those invitations still go there; only sessions "
		 "nobody was invited to yet take %s", configured, kept, configured);
	free(kept);
}

const char *session_organizer(struct sender *s, const char *uid)
{
	if (!s->org_uid || !str_eq(s->org_uid, uid)) {
		free(s->org_uid);
		free(s->org);
		s->org_uid = xstrdup(uid);
		s->org = state_calendar_organizer(s->st, uid, s->pg->cfg->organizer_email);
	}
	return s->org;
}

/* The programme's salt of Message-IDs (state_message_id_salt). */
static char *message_salt(const struct config *cfg, struct state *st)
{
	char *identity = xasprintf("%s|%s", cfg->name ? cfg->name : "",
				   cfg->organizer_email ? cfg->organizer_email : "");
	char *salt = state_message_id_salt(st, identity);

	free(identity);
	return salt;
}

bool send_salt_ready(struct sender *s)
{
	if (!s->id_salt)
		s->id_salt = message_salt(s->pg->cfg, s->st);
	if (!s->id_from)
		s->id_from = state_pin(s->st, "message-id-organizer", s->pg->cfg->organizer_email);
	if (!s->id_salt || !s->id_from)
		log_error("%s: the programme's Message-ID salt cannot be recorded: nothing is sent "
			  "until it is", s->pg->cfg->state);
	return s->id_salt && s->id_from;
}

char *send_build_message(struct sender *s, const struct delivery *d, size_t *len,
			 struct errlist *errs)
{
	struct message_req req = {.message = d->message, .p = d->p, .session = d->session,
				  .deadline = d->deadline, .sequence = d->sequence, .key = d->key,
				  .now = s->now};
	/* An update names what the participant's calendar held before. */
	struct session before;
	bool has_before = str_eq(d->message, "update") && d->session &&
			  state_session_previous(s->st, d->p->email, d->session, &before);
	char *msg;

	req.previous = has_before ? &before : NULL;
	if (!s->id_salt || !s->id_from)
		send_salt_ready(s); /* a --preview: worked out, not recorded */
	req.id_salt = s->id_salt;
	req.id_from = s->id_from;
	if (d->session)
		req.organizer = session_organizer(s, d->session->uid);
	if (!s->msg_cache)
		s->msg_cache = message_cache_new();
	req.cache = s->msg_cache;
	msg = message_build(s->pg->cfg, s->pg->cal, s->pg->reg, s->pg->tpl, &req, len, errs);
	if (has_before)
		state_session_clear(&before);
	return msg;
}
