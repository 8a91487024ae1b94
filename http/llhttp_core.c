/* Compiles llhttp's llhttp.c from the directory configure found (LLHTTP_DIR). */
#include <llhttp.c>
