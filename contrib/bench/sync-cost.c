/*
 * sync-cost.c — what making one received instance durable costs on a
 * file system at the least, measured the way vnamigd does it
 * (contrib/bench/dicom-store prints the floors this puts under any
 * durable receiver's time).
 *
 *	sync-cost DIR SIZE COUNT [append]
 *
 *   record  SIZE bytes written into a file already written with zeros,
 *           then fdatasync: the spool's sync of one small instance (the
 *           shared lane that takes records up to 1 MiB is written with
 *           zeros ahead: store/spool.c prezero). With "append", the file
 *           grows instead, as the lane of its own a bigger record takes
 *           does (each sync then also records the new size and blocks).
 *           Give at most the last 256 KiB of a bigger record: the spool
 *           starts the writeback of its earlier parts while the rest
 *           arrives, so only that much is sure to wait for the sync;
 *   index   1 KiB appended to a growing file, then fdatasync: RocksDB's
 *           WAL sync of one instance's index rows and audit leaf;
 *   both    the two at once, as vnamigd makes them: the record written
 *           (over the first phase's records, allocated as the zeros
 *           were; or appended) and the row appended, then the row's file
 *           fdatasynced by a second thread (woken as vnamigd wakes its
 *           store thread) while this one fdatasyncs the record's; timed
 *           until both are done. On one disk the two overlap badly (each
 *           waits for the device to flush its cache), so this is more
 *           than the longer of the two alone.
 *
 * COUNT of each, one after another (a serial sender: nothing to group),
 * after 5 unmeasured ones. Prints "RECORD_MS INDEX_MS BOTH_MS", the
 * medians in milliseconds. The files are removed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WARM	5

static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	int		 fd;
	int		 go, done, quit, rc;
} w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, 0, 0, 0,
	0 };

static char rec_path[4096], idx_path[4096];

static void
die(const char *what)
{
	fprintf(stderr, "sync-cost: %s: %s\n", what, strerror(errno));
	unlink(rec_path);
	unlink(idx_path);
	exit(1);
}

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median_ms(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) * 1e3;
}

static void
write_all(int fd, const void *p, size_t n, off_t at)
{
	const char *c = p;

	while (n > 0) {
		ssize_t r = at < 0 ? write(fd, c, n) : pwrite(fd, c, n, at);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("write");
		c += r;
		n -= (size_t)r;
		if (at >= 0)
			at += r;
	}
}

/* The second thread: one fdatasync of w.fd each time it is asked. */
static void *
syncer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&w.mu);
	for (;;) {
		while (!w.go && !w.quit)
			pthread_cond_wait(&w.cv, &w.mu);
		if (w.quit)
			break;
		w.go = 0;
		pthread_mutex_unlock(&w.mu);
		int rc = fdatasync(w.fd);
		pthread_mutex_lock(&w.mu);
		w.rc = rc < 0 ? errno : 0;
		w.done = 1;
		pthread_cond_broadcast(&w.cv);
	}
	pthread_mutex_unlock(&w.mu);
	return NULL;
}

int
main(int argc, char **argv)
{
	long size, count;
	char *data, row[1024];
	double *t_rec, *t_idx, *t_both;
	int fd, fdi, append;
	off_t base;
	pthread_t thr;

	if (argc < 4 || argc > 5 || (size = strtol(argv[2], NULL, 10)) <= 0 ||
	    (count = strtol(argv[3], NULL, 10)) <= 0 || count > 100000 ||
	    (argc == 5 && strcmp(argv[4], "append") != 0)) {
		fprintf(stderr, "usage: sync-cost DIR SIZE COUNT [append]\n");
		return 2;
	}
	append = argc == 5;
	snprintf(rec_path, sizeof(rec_path), "%s/sync-cost.rec.%ld", argv[1],
	    (long)getpid());
	snprintf(idx_path, sizeof(idx_path), "%s/sync-cost.idx.%ld", argv[1],
	    (long)getpid());
	if ((data = malloc((size_t)size)) == NULL ||
	    (t_rec = calloc((size_t)count, sizeof(double))) == NULL ||
	    (t_idx = calloc((size_t)count, sizeof(double))) == NULL ||
	    (t_both = calloc((size_t)count, sizeof(double))) == NULL)
		die("memory");
	for (long i = 0; i < size; i++)
		data[i] = (char)(i * 131 + 7);
	memset(row, 'r', sizeof(row));
	if ((fd = open(rec_path, O_RDWR | O_CREAT | O_EXCL, 0600)) < 0)
		die(rec_path);
	/* zeros first, synced: the shared lane is written so */
	if (!append) {
		char *zero = calloc(1, 1 << 20);
		off_t total = (off_t)size * (count + WARM), at = 0;

		if (zero == NULL)
			die("memory");
		while (at < total) {
			size_t n = total - at < (1 << 20) ? (size_t)(total - at) :
			    (1 << 20);

			write_all(fd, zero, n, at);
			at += (off_t)n;
		}
		free(zero);
		if (fsync(fd) < 0)
			die("fsync");
	}
	for (long i = 0; i < count + WARM; i++) {
		double t0 = now();

		write_all(fd, data, (size_t)size, (off_t)(i * size));
		if (fdatasync(fd) < 0)
			die("fdatasync");
		if (i >= WARM)
			t_rec[i - WARM] = now() - t0;
	}
	if ((fdi = open(idx_path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND,
	    0600)) < 0)
		die(idx_path);
	for (long i = 0; i < count + WARM; i++) {
		double t0 = now();

		write_all(fdi, row, sizeof(row), -1);
		if (fdatasync(fdi) < 0)
			die("fdatasync");
		if (i >= WARM)
			t_idx[i - WARM] = now() - t0;
	}
	w.fd = fdi;
	/* appending: after the first phase's records */
	base = append ? (off_t)size * (count + WARM) : 0;
	if ((errno = pthread_create(&thr, NULL, syncer, NULL)) != 0)
		die("pthread_create");
	for (long i = 0; i < count + WARM; i++) {
		double t0 = now();

		write_all(fd, data, (size_t)size, base + (off_t)(i * size));
		write_all(fdi, row, sizeof(row), -1);
		pthread_mutex_lock(&w.mu);
		w.go = 1;
		w.done = 0;
		pthread_cond_signal(&w.cv);
		pthread_mutex_unlock(&w.mu);
		if (fdatasync(fd) < 0)
			die("fdatasync");
		pthread_mutex_lock(&w.mu);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		if (w.rc != 0) {
			errno = w.rc;
			die("fdatasync (second thread)");
		}
		if (i >= WARM)
			t_both[i - WARM] = now() - t0;
	}
	pthread_mutex_lock(&w.mu);
	w.quit = 1;
	pthread_cond_signal(&w.cv);
	pthread_mutex_unlock(&w.mu);
	pthread_join(thr, NULL);
	close(fd);
	close(fdi);
	unlink(rec_path);
	unlink(idx_path);
	printf("%.3f %.3f %.3f\n", median_ms(t_rec, (int)count),
	    median_ms(t_idx, (int)count), median_ms(t_both, (int)count));
	free(data);
	free(t_rec);
	free(t_idx);
	free(t_both);
	return 0;
}
