// temporary stub (not committed)
#include <errno.h>
#include "vmm/api.h"
int api_server_start(const struct api_target *t, const char *path, int listen_fd,
		     struct api_server **out, struct vmm_error *e) { return -ENOSYS; }
void api_server_stop(struct api_server *s) {}
int api_server_listen_fd(const struct api_server *s) { return -1; }
