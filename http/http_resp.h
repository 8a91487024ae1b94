/* placeholder */
#ifndef VNAMIG_HTTP_RESP_H
#define VNAMIG_HTTP_RESP_H
#endif
