/* inbound.h: what one message from the organiser's mailbox is: an iMIP
 * REPLY (RFC 6047), a delivery status notification (RFC 3464), or
 * neither. Pure: the message's bytes in, facts out. GMime reads the MIME,
 * libical the calendar part. */
#ifndef KALLAD_INBOUND_H
#define KALLAD_INBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum inbound_kind { IN_OTHER, IN_REPLY, IN_DSN };

/* A calendar part larger than this (bytes, decoded) is no answer read. */
#define INBOUND_CALENDAR_MAX (1024 * 1024)

/* One recipient of a delivery status notification. */
struct inbound_rcpt {
	char *email;      /* Final-Recipient (else Original-Recipient), lower case */
	char *original;   /* Original-Recipient, lower case, or NULL: the address
			   * the message was sent to, where a server rewrote it */
	char *action;     /* failed, delayed, delivered, relayed, expanded (lower case) */
	char *status;     /* "5.1.1" */
	char *diagnostic; /* Diagnostic-Code, unfolded; NULL when absent */
};

struct inbound {
	enum inbound_kind kind;
	char *from;       /* the From address, lower case; NULL when there is none */
	char *message_id; /* without <>; NULL when there is none */
	/* IN_REPLY: the first VEVENT of the METHOD:REPLY part */
	char *uid;
	char *attendee;   /* the ATTENDEE address (mailto: removed), lower case: the one
			   * equal to From when the reply names several */
	char *partstat;   /* lower case: accepted, declined, tentative, needs-action, ... */
	int sequence;
	time_t dtstamp;   /* 0 when the reply carries none */
	/* IN_DSN */
	struct inbound_rcpt *rcpts;
	size_t n_rcpts;
	char *original_id; /* Message-ID of the message returned with it, if any */
	/* IN_OTHER: why it is neither (for the log and --fetch-replies) */
	const char *why;
};

/* Reads one message (RFC 5322 bytes, CRLF or LF) into *out, which the
 * caller clears with inbound_clear(). Never fails: what it cannot read is
 * IN_OTHER with a reason. */
void inbound_parse(const char *data, size_t len, struct inbound *out);
void inbound_clear(struct inbound *in);

#endif
