/* curl_raw: the ceiling for kallad's SMTP path. Sends one message file N
 * times over one reused libcurl easy handle (the same options kallad uses
 * for a plain loopback server), with nothing else: no planning, building,
 * or ledger. With THREADS, that many threads each send N / THREADS over a
 * handle and connection of their own, as kallad's connections do.
 * Prints messages per second.
 *   cc -O2 -o curl_raw bench/curl_raw.c -lcurl -lpthread
 *   curl_raw smtp://127.0.0.1:PORT message.eml 4000 [THREADS] */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct src {
	const char *data;
	size_t len, pos;
};

static size_t rd(char *buf, size_t size, size_t n, void *arg)
{
	struct src *s = arg;
	size_t k = size * n;

	if (k > s->len - s->pos)
		k = s->len - s->pos;
	memcpy(buf, s->data + s->pos, k);
	s->pos += k;
	return k;
}

struct job {
	const char *url, *data;
	size_t len;
	long n;
	int rc;
};

static void *worker(void *arg)
{
	struct job *j = arg;
	struct src s = {.data = j->data, .len = j->len};
	struct curl_slist *rcpt;
	CURL *c = curl_easy_init();

	rcpt = curl_slist_append(NULL, "<deltagare@kommun.example.se>");
	curl_easy_setopt(c, CURLOPT_URL, j->url);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, "<program@example.org>");
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, rd);
	curl_easy_setopt(c, CURLOPT_READDATA, &s);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s.len);
	for (long i = 0; i < j->n && !j->rc; i++) {
		s.pos = 0;
		if (curl_easy_perform(c) != CURLE_OK)
			j->rc = 1;
	}
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	return NULL;
}

int main(int argc, char **argv)
{
	struct job jobs[64];
	pthread_t tid[64];
	struct timespec a, b;
	int threads = argc == 5 ? atoi(argv[4]) : 1;
	long n;
	size_t len;
	FILE *f;
	char *buf;
	int rc = 0;

	if (argc < 4 || argc > 5 || threads < 1 || threads > 64 || !(f = fopen(argv[2], "rb")))
		return 2;
	buf = malloc(1 << 20);
	len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	n = atol(argv[3]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int t = 0; t < threads; t++) {
		jobs[t] = (struct job){.url = argv[1], .data = buf, .len = len, .n = n / threads};
		pthread_create(&tid[t], NULL, worker, &jobs[t]);
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(tid[t], NULL);
		rc |= jobs[t].rc;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (rc)
		return 1;
	printf("%.0f\n", n / threads * threads /
				 ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9));
	curl_global_cleanup();
	free(buf);
	return 0;
}
