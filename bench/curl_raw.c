/* curl_raw: the ceiling for kallad's SMTP path. Sends one message file N
 * times over one reused libcurl easy handle (the same options kallad uses
 * for a plain loopback server), with nothing else: no planning, building,
 * or ledger. Prints messages per second.
 *   cc -O2 -o curl_raw bench/curl_raw.c -lcurl
 *   curl_raw smtp://127.0.0.1:PORT message.eml 4000 */
#include <curl/curl.h>
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

int main(int argc, char **argv)
{
	struct src s = {0};
	struct timespec a, b;
	struct curl_slist *rcpt;
	FILE *f;
	long n;
	CURL *c;
	char *buf;

	if (argc != 4 || !(f = fopen(argv[2], "rb")))
		return 2;
	buf = malloc(1 << 20);
	s.len = fread(buf, 1, 1 << 20, f);
	s.data = buf;
	fclose(f);
	n = atol(argv[3]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	rcpt = curl_slist_append(NULL, "<deltagare@kommun.example.se>");
	curl_easy_setopt(c, CURLOPT_URL, argv[1]);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, "<program@example.org>");
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, rd);
	curl_easy_setopt(c, CURLOPT_READDATA, &s);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s.len);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		s.pos = 0;
		if (curl_easy_perform(c) != CURLE_OK)
			return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.0f\n", n / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9));
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	curl_global_cleanup();
	free(buf);
	return 0;
}
