/*
 * slowsync.c — an LD_PRELOAD shim for t/backlog.t: a slow disk. While the
 * file named by $SLOWSYNC_FLAG exists, fsync and fdatasync wait 0.5 s
 * before doing their work.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

static void
slow(void)
{
	const char *flag = getenv("SLOWSYNC_FLAG");

	if (flag != NULL && access(flag, F_OK) == 0)
		usleep(500 * 1000);
}

int
fdatasync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
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
