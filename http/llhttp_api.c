/* Compiles llhttp's api.c from the directory configure found (LLHTTP_DIR). */
#include <api.c>
