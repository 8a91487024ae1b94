/* Compiles llhttp's http.c from the directory configure found (LLHTTP_DIR). */
#include <http.c>
