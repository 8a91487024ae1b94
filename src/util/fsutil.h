/*
 * fsutil.h — small file-system helpers shared by the daemon and the tools.
 */
#ifndef VNAMIG_FSUTIL_H
#define VNAMIG_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p: PATH and its missing parents. 0, or -1 with errno. */
int fs_mkdir_p(const char *path, mode_t mode);

/*
 * fs_lock_dir: take DIR/vnamigd.lock (flock, exclusive, not waiting) and
 * write our pid into it. Returns the open descriptor that holds the lock;
 * -1 with errno when the file cannot be opened; -2 when another process
 * holds it (HOLDER gets the pid it wrote, or ""). *PID_OK is 0 when our
 * pid could not be written (the lock holds all the same).
 */
int fs_lock_dir(const char *dir, char *holder, size_t holdersz,
    int *pid_ok);

/* fsync a directory (after a rename or unlink in it). 0, or -1/errno. */
int fs_sync_dir(const char *dir);

#endif
