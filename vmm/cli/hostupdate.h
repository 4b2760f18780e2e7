/* SPDX-License-Identifier: Apache-2.0 */
/* vmm hostupdate (hostupdate.c): argv from the subcommand's name on; the exit status. */
#ifndef VMM_CLI_HOSTUPDATE_H
#define VMM_CLI_HOSTUPDATE_H

int hostupdate_main(int argc, char **argv);

#endif
