/*
 * slowsync.c — an LD_PRELOAD shim: a slow or a failing disk.
 *   SLOWSYNC_FLAG=FILE   while FILE exists, fsync and fdatasync wait 0.5 s
 *                        before doing their work (t/backlog.t)
 *   SYNCFAIL_FLAG=FILE   while FILE exists, fdatasync of a spool segment
 *                        (a file whose name ends in ".seg") fails with
 *                        EIO without doing anything (t/spoolvoid.t)
 *   SLOWSEG_FLAG=FILE    while FILE exists, fdatasync of a spool segment
 *                        waits 0.5 s first (t/spoolvoid.t: the index of
 *                        a record is written before its bytes are synced)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
slow(void)
{
	const char *flag = getenv("SLOWSYNC_FLAG");

	if (flag != NULL && access(flag, F_OK) == 0)
		usleep(500 * 1000);
}

/* segment: fd is a spool segment and the file named by $VAR exists */
static int
segment(int fd, const char *var)
{
	const char *flag = getenv(var);
	char link[64], path[4096];
	ssize_t n;

	if (flag == NULL || access(flag, F_OK) != 0)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) < 4)
		return 0;
	path[n] = '\0';
	return strcmp(path + n - 4, ".seg") == 0;
}

int
fdatasync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	if (segment(fd, "SYNCFAIL_FLAG")) {
		errno = EIO;
		return -1;
	}
	if (segment(fd, "SLOWSEG_FLAG"))
		usleep(500 * 1000);
	slow();
	return real(fd);
}

int
fsync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	slow();
	return real(fd);
}
