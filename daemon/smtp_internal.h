/* smtp_internal.h: what the SMTP pool (smtp.c) and the reading of its
 * replies (smtp_reply.c) share. Not for use outside them. */
#ifndef KALLAD_SMTP_INTERNAL_H
#define KALLAD_SMTP_INTERNAL_H

#include "smtp.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>

struct smtp;

/* One connection: an easy handle, its own multi handle that keeps its
 * connection between transactions (so a connection that failed is never
 * another slot's), and the transaction it carries. */
struct slot {
	struct smtp *pool;
	CURL *curl;
	CURLM *multi;
	struct curl_slist *rcpts; /* the transaction's one recipient */
	bool running;    /* a transaction was started and not yet finished */
	void *tag;       /* the caller's, handed back with the outcome */
	bool fresh;      /* the last transaction failed: do not reuse its connection */
	bool connected;  /* a connection may be open (kept by the multi handle) */
	double used;     /* when the last transaction ended, for idle-timeout */
	pthread_t thread; /* runs the slot's transfers */
	bool job;        /* under the pool's lock: a transfer for the thread to run */
	pthread_cond_t job_cv; /* ... signalled to this slot's thread alone */
	bool done;       /* under the pool's lock: it ended, with rc */
	unsigned long done_seq; /* ... as the how-manieth */
	CURLcode rc;
	bool slow;
	enum relay_fault fault;
	char errbuf[CURL_ERROR_SIZE];

	/* The transaction in flight. */
	const char *msg;
	size_t len, pos;
	double progress_at;    /* when the upload last moved */
	bool stalled;          /* the server stopped reading the message */
	bool quitting;         /* QUIT went out: its reply says nothing of the message */
	bool data_go;          /* DATA got its 354 */
	char stage[16];        /* the command the next reply answers */
	char reply_stage[16];  /* the command last_reply answered */
	struct strbuf reply;   /* lines of the reply being read */
	char *last_reply;      /* the last complete reply, continuation lines joined */
	int last_code;
};

struct smtp {
	pthread_mutex_t lock; /* guards job, done, rc, quit, opened, failing */
	pthread_cond_t done_cv;
	bool quit;       /* the threads end */
	unsigned long done_seq; /* transfers ended */
	int threads;     /* started */
	struct slot *slots;
	int n;           /* [smtp] connections */
	int running;     /* slots with a transaction in flight */
	bool proven;     /* a transaction went through since the pool (re)opened or a relay
			  * fault: more than one may be in flight */
	bool failing;    /* the last transaction failed: new connections are spaced */
	void (*tick)(void *); /* called about once a second while waiting */
	void *tick_arg;
	double ticked;   /* when tick was last called */
	char *url;
	char *from;      /* "<addr>" for MAIL FROM */
	long timeout, eod_timeout, idle_timeout; /* [smtp], in seconds */
	double opened;   /* when the last connection was opened; 0: never */
};

/* The command a failure answered: the one whose reply said 4xx/5xx, or
 * the one left without a reply. */
const char *smtp_where(const struct slot *s, long code);
/* True when where is the stage named (a prefix match on the command). */
bool smtp_at(const char *where, const char *stage);
/* What the transfer's end means for its message. */
enum send_result smtp_classify(struct slot *s, CURLcode rc, long code);
/* The words recorded with that outcome (caller frees). */
char *smtp_detail(const struct slot *s, CURLcode rc, enum send_result r, long code);
/* True when a reply asks kallad to slow down (a rate limit). */
bool smtp_limit_sign(long code, const char *reply);

#endif
