/*
 * A PAM application as sshd is one: a C program, no Rust runtime, that
 * authenticates one user through the real libpam with a service file from
 * a private directory (pam_start_confdir). examples/login_cost.rs builds
 * it with `cc` and runs it once per login, so a module's cost is measured
 * as sshd pays it (for a Rust module that includes loading libgcc_s.so.1,
 * which a Rust client such as examples/pam_client.rs has loaded already).
 *
 *   pam_login --confdir DIR --service NAME --user USER [--answer TEXT]...
 *
 * Prompts are answered with the --answer values in order; a prompt with
 * no answer left fails the conversation. Prints one line of JSON, as
 * pam_client does for the fields the benchmark reads:
 *
 *   {"rc":7,"result":"PAM_AUTH_ERR"}
 *
 * Copyright the pam-totp authors. GPL-3.0-or-later.
 */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ANSWERS 8

static const char *answers[MAX_ANSWERS];
static int n_answers, next_answer;

static int conversation(int n, const struct pam_message **msg,
                        struct pam_response **resp, void *data) {
    (void)data;
    if (n <= 0 || n > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    struct pam_response *r = calloc((size_t)n, sizeof *r);
    if (r == NULL)
        return PAM_BUF_ERR;
    for (int i = 0; i < n; i++) {
        int style = msg[i]->msg_style;
        if (style != PAM_PROMPT_ECHO_OFF && style != PAM_PROMPT_ECHO_ON)
            continue;
        if (next_answer == n_answers || (r[i].resp = strdup(answers[next_answer++])) == NULL) {
            for (int j = 0; j < i; j++)
                free(r[j].resp);
            free(r);
            return PAM_CONV_ERR;
        }
    }
    *resp = r;
    return PAM_SUCCESS;
}

static const char *result_name(int rc) {
    switch (rc) {
    case PAM_SUCCESS: return "PAM_SUCCESS";
    case PAM_AUTH_ERR: return "PAM_AUTH_ERR";
    case PAM_IGNORE: return "PAM_IGNORE";
    case PAM_PERM_DENIED: return "PAM_PERM_DENIED";
    case PAM_USER_UNKNOWN: return "PAM_USER_UNKNOWN";
    case PAM_AUTHINFO_UNAVAIL: return "PAM_AUTHINFO_UNAVAIL";
    case PAM_MAXTRIES: return "PAM_MAXTRIES";
    case PAM_CONV_ERR: return "PAM_CONV_ERR";
    case PAM_SERVICE_ERR: return "PAM_SERVICE_ERR";
    case PAM_SYSTEM_ERR: return "PAM_SYSTEM_ERR";
    case PAM_BUF_ERR: return "PAM_BUF_ERR";
    default: return "other";
    }
}

static void usage(void) {
    fputs("usage: pam_login --confdir DIR --service NAME --user USER [--answer TEXT]...\n", stderr);
    exit(2);
}

int main(int argc, char **argv) {
    const char *confdir = NULL, *service = NULL, *user = NULL;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 == argc)
            usage();
        if (strcmp(argv[i], "--confdir") == 0)
            confdir = argv[i + 1];
        else if (strcmp(argv[i], "--service") == 0)
            service = argv[i + 1];
        else if (strcmp(argv[i], "--user") == 0)
            user = argv[i + 1];
        else if (strcmp(argv[i], "--answer") == 0 && n_answers < MAX_ANSWERS)
            answers[n_answers++] = argv[i + 1];
        else
            usage();
    }
    if (confdir == NULL || service == NULL || user == NULL)
        usage();
    struct pam_conv conv = {conversation, NULL};
    pam_handle_t *pamh = NULL;
    int rc = pam_start_confdir(service, user, &conv, confdir, &pamh);
    if (rc != PAM_SUCCESS) {
        fprintf(stderr, "pam_login: pam_start_confdir failed: %d\n", rc);
        return 1;
    }
    rc = pam_authenticate(pamh, 0);
    pam_end(pamh, rc);
    printf("{\"rc\":%d,\"result\":\"%s\"}\n", rc, result_name(rc));
    return 0;
}
