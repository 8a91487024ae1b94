/*
 * store_sink.c — see store_sink.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dimse/ds_write.h"
#include "src/net/store_sink.h"

struct store_sink {
	int		 fd;
	int		 failed;
	int		 err_no;
	uint64_t	 bytes;
	char		*dir;
	char		*tmp;		/* DIR/.in.<uid>.<n> */
	char		*final;		/* DIR/<uid>.dcm */
};

int
store_uid_valid(const char *uid)
{
	size_t n = strlen(uid), comp = 0;

	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (uid[i] == '.') {
			if (comp == 0)
				return 0;	/* empty component */
			comp = 0;
		} else if (uid[i] >= '0' && uid[i] <= '9') {
			if (comp == 1 && uid[i - 1] == '0')
				return 0;	/* leading zero */
			comp++;
		} else
			return 0;
	}
	return comp > 0;
}

static int
put(void *arg, const uint8_t *p, size_t n)
{
	struct store_sink *s = arg;

	while (n > 0 && !s->failed) {
		ssize_t w = write(s->fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			s->failed = 1;
			s->err_no = w < 0 ? errno : EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		s->bytes += (uint64_t)w;
	}
	return s->failed ? -1 : 0;
}

static void
sink_free(struct store_sink *s)
{
	free(s->dir);
	free(s->tmp);
	free(s->final);
	free(s);
}

struct store_sink *
store_sink_begin(const char *dir, const char *sop_class,
    const char *sop_instance, const char *ts_uid, char *err, size_t cap)
{
	static unsigned long seq;
	struct store_sink *s;

	if (!store_uid_valid(sop_instance) || !store_uid_valid(sop_class) ||
	    !store_uid_valid(ts_uid)) {
		snprintf(err, cap, "invalid UID (SOP class \"%.64s\", instance "
		    "\"%.64s\", transfer syntax \"%.64s\"): not used as a "
		    "file name", sop_class, sop_instance, ts_uid);
		return NULL;
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, cap, "cannot create %s: %s", dir,
		    strerror(errno));
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		abort();
	if (asprintf(&s->tmp, "%s/.in.%s.%lu.%ld", dir, sop_instance, ++seq,
	    (long)getpid()) < 0 || asprintf(&s->final, "%s/%s.dcm", dir,
	    sop_instance) < 0 || (s->dir = strdup(dir)) == NULL)
		abort();
	if ((s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0640)) < 0) {
		snprintf(err, cap, "cannot create %s: %s", s->tmp,
		    strerror(errno));
		sink_free(s);
		return NULL;
	}
	if (ds_write_part10_header(put, s, sop_class, sop_instance,
	    ts_uid) != 0) {
		snprintf(err, cap, "write %s: %s", s->tmp,
		    strerror(s->err_no));
		store_sink_abort(s);
		return NULL;
	}
	return s;
}

int
store_sink_write(struct store_sink *s, const uint8_t *p, size_t n, char *err,
    size_t cap)
{
	if (put(s, p, n) < 0) {
		snprintf(err, cap, "write %s: %s", s->tmp,
		    strerror(s->err_no));
		return -1;
	}
	return 0;
}

int
store_sink_commit(struct store_sink *s, char *err, size_t cap)
{
	int dfd;

	if (fsync(s->fd) < 0) {
		snprintf(err, cap, "fsync %s: %s", s->tmp, strerror(errno));
		store_sink_abort(s);
		return -1;
	}
	close(s->fd);
	s->fd = -1;
	if (rename(s->tmp, s->final) < 0) {
		snprintf(err, cap, "rename %s: %s", s->tmp, strerror(errno));
		store_sink_abort(s);
		return -1;
	}
	if ((dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fsync(dfd) < 0) {
		snprintf(err, cap, "fsync %s: %s", s->dir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		sink_free(s);
		return -1;
	}
	close(dfd);
	sink_free(s);
	return 0;
}

void
store_sink_abort(struct store_sink *s)
{
	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	unlink(s->tmp);
	sink_free(s);
}

uint64_t
store_sink_bytes(const struct store_sink *s)
{
	return s->bytes;
}
