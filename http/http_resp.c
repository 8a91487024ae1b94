/* placeholder: being written */
typedef int vn_placeholder_http_resp;
