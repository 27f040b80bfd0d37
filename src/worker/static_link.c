/*  static_link.c: the symbols a static shoal-worker cannot get from Debian.

    Built only into the static worker (SHOAL_STATIC_WORKER, the default).
    A worker linked against the shared libraries maps 31 of them (libzmq
    alone brings libstdc++, sodium, pgm, norm and six Kerberos libraries;
    czmq brings libsystemd with gcrypt, lzma, zstd, lz4, cap), and their
    file-backed pages are most of its resident memory. Linked statically it
    keeps only the code it calls.

    Debian ships static archives of everything the worker needs except two
    libraries, and those are referenced only by code the worker never runs:

    - GSSAPI (libgssapi_krb5): libzmq's GSSAPI security mechanism, used only
      when a socket sets ZMQ_GSSAPI_SERVER or ZMQ_GSSAPI_PLAINTEXT. shoal
      speaks NULL or CURVE, never GSSAPI; libzmq still references the
      functions from the handshake code that every socket links.
    - systemd socket activation (libsystemd): czmq's zsock_bind looks for
      sockets passed by systemd (LISTEN_FDS) when zsys_auto_use_fd is on.
      The worker binds nothing: it connects one DEALER.

    Each stand-in fails cleanly rather than aborting: the GSSAPI calls that
    would do work return GSS_S_FAILURE (minor status 0), so a GSSAPI
    handshake, if a future change ever asked for one, fails like one with
    no Kerberos credentials; the release calls have nothing to free, since
    no call here allocates. sd_listen_fds reports that systemd passed no
    sockets, which is what libsystemd itself answers outside socket
    activation; the sd_is_socket_* checks then never run, and if they did
    they would answer -ENOSYS (an error, never "yes").

    The prototypes come from the real headers (libkrb5-dev and
    libsystemd-dev, both dependencies of libzmq3-dev and libczmq-dev), so
    the compiler checks every signature against the library it replaces. */
#include <errno.h>
#include <gssapi/gssapi.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-daemon.h>

/* ---- GSSAPI ---------------------------------------------------------- */

/*  The name types libzmq passes to gss_import_name, with their real values
    (RFC 2744): GSS_C_NT_USER_NAME is 1.2.840.113554.1.2.1.1,
    GSS_C_NT_HOSTBASED_SERVICE is 1.2.840.113554.1.2.1.4. */
static gss_OID_desc s_nt_user_name = {
    10, (void *) "\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x01"
};
static gss_OID_desc s_nt_hostbased_service = {
    10, (void *) "\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04"
};
gss_OID GSS_C_NT_USER_NAME = &s_nt_user_name;
gss_OID GSS_C_NT_HOSTBASED_SERVICE = &s_nt_hostbased_service;

/*  Sets a minor status of 0 (there is no mechanism to explain anything)
    and answers `major`. */
static OM_uint32
s_status (OM_uint32 *minor_status, OM_uint32 major)
{
    if (minor_status)
        *minor_status = 0;
    return major;
}

/*  Empties an output buffer, so a caller that releases it frees nothing. */
static void
s_empty_buffer (gss_buffer_t buffer)
{
    if (buffer) {
        buffer->length = 0;
        buffer->value = NULL;
    }
}

OM_uint32 KRB5_CALLCONV
gss_acquire_cred (OM_uint32 *minor_status, gss_name_t desired_name,
                  OM_uint32 time_req, gss_OID_set desired_mechs,
                  gss_cred_usage_t cred_usage, gss_cred_id_t *output_cred_handle,
                  gss_OID_set *actual_mechs, OM_uint32 *time_rec)
{
    if (output_cred_handle)
        *output_cred_handle = GSS_C_NO_CREDENTIAL;
    if (actual_mechs)
        *actual_mechs = GSS_C_NO_OID_SET;
    if (time_rec)
        *time_rec = 0;
    return s_status (minor_status, GSS_S_FAILURE);
}

OM_uint32 KRB5_CALLCONV
gss_release_cred (OM_uint32 *minor_status, gss_cred_id_t *cred_handle)
{
    if (cred_handle)
        *cred_handle = GSS_C_NO_CREDENTIAL;
    return s_status (minor_status, GSS_S_COMPLETE);
}

OM_uint32 KRB5_CALLCONV
gss_init_sec_context (OM_uint32 *minor_status,
                      gss_cred_id_t claimant_cred_handle,
                      gss_ctx_id_t *context_handle, gss_name_t target_name,
                      gss_OID mech_type, OM_uint32 req_flags,
                      OM_uint32 time_req,
                      gss_channel_bindings_t input_chan_bindings,
                      gss_buffer_t input_token, gss_OID *actual_mech_type,
                      gss_buffer_t output_token, OM_uint32 *ret_flags,
                      OM_uint32 *time_rec)
{
    if (actual_mech_type)
        *actual_mech_type = GSS_C_NO_OID;
    s_empty_buffer (output_token);
    if (ret_flags)
        *ret_flags = 0;
    if (time_rec)
        *time_rec = 0;
    return s_status (minor_status, GSS_S_FAILURE);
}

OM_uint32 KRB5_CALLCONV
gss_accept_sec_context (OM_uint32 *minor_status, gss_ctx_id_t *context_handle,
                        gss_cred_id_t acceptor_cred_handle,
                        gss_buffer_t input_token_buffer,
                        gss_channel_bindings_t input_chan_bindings,
                        gss_name_t *src_name, gss_OID *mech_type,
                        gss_buffer_t output_token, OM_uint32 *ret_flags,
                        OM_uint32 *time_rec,
                        gss_cred_id_t *delegated_cred_handle)
{
    if (src_name)
        *src_name = GSS_C_NO_NAME;
    if (mech_type)
        *mech_type = GSS_C_NO_OID;
    s_empty_buffer (output_token);
    if (ret_flags)
        *ret_flags = 0;
    if (time_rec)
        *time_rec = 0;
    if (delegated_cred_handle)
        *delegated_cred_handle = GSS_C_NO_CREDENTIAL;
    return s_status (minor_status, GSS_S_FAILURE);
}

OM_uint32 KRB5_CALLCONV
gss_delete_sec_context (OM_uint32 *minor_status, gss_ctx_id_t *context_handle,
                        gss_buffer_t output_token)
{
    if (context_handle)
        *context_handle = GSS_C_NO_CONTEXT;
    s_empty_buffer (output_token);
    return s_status (minor_status, GSS_S_COMPLETE);
}

OM_uint32 KRB5_CALLCONV
gss_wrap (OM_uint32 *minor_status, gss_ctx_id_t context_handle,
          int conf_req_flag, gss_qop_t qop_req,
          gss_buffer_t input_message_buffer, int *conf_state,
          gss_buffer_t output_message_buffer)
{
    if (conf_state)
        *conf_state = 0;
    s_empty_buffer (output_message_buffer);
    return s_status (minor_status, GSS_S_FAILURE);
}

OM_uint32 KRB5_CALLCONV
gss_unwrap (OM_uint32 *minor_status, gss_ctx_id_t context_handle,
            gss_buffer_t input_message_buffer,
            gss_buffer_t output_message_buffer, int *conf_state,
            gss_qop_t *qop_state)
{
    s_empty_buffer (output_message_buffer);
    if (conf_state)
        *conf_state = 0;
    if (qop_state)
        *qop_state = 0;
    return s_status (minor_status, GSS_S_FAILURE);
}

OM_uint32 KRB5_CALLCONV
gss_display_name (OM_uint32 *minor_status, gss_name_t input_name,
                  gss_buffer_t output_name_buffer, gss_OID *output_name_type)
{
    s_empty_buffer (output_name_buffer);
    if (output_name_type)
        *output_name_type = GSS_C_NO_OID;
    return s_status (minor_status, GSS_S_FAILURE);
}

OM_uint32 KRB5_CALLCONV
gss_import_name (OM_uint32 *minor_status, gss_buffer_t input_name_buffer,
                 gss_OID input_name_type, gss_name_t *output_name)
{
    if (output_name)
        *output_name = GSS_C_NO_NAME;
    return s_status (minor_status, GSS_S_FAILURE);
}

OM_uint32 KRB5_CALLCONV
gss_release_name (OM_uint32 *minor_status, gss_name_t *input_name)
{
    if (input_name)
        *input_name = GSS_C_NO_NAME;
    return s_status (minor_status, GSS_S_COMPLETE);
}

OM_uint32 KRB5_CALLCONV
gss_release_buffer (OM_uint32 *minor_status, gss_buffer_t buffer)
{
    /*  Every buffer a call here hands out is empty, and libzmq releases
        only buffers that GSSAPI calls filled: there is never anything to
        free. */
    s_empty_buffer (buffer);
    return s_status (minor_status, GSS_S_COMPLETE);
}

/* ---- systemd socket activation --------------------------------------- */

int
sd_listen_fds (int unset_environment)
{
    /*  No socket passed: the answer libsystemd gives without LISTEN_FDS.
        (A static worker does not take sockets from systemd; it binds
        nothing anyway.) */
    return 0;
}

int
sd_is_socket_inet (int fd, int family, int type, int listening, uint16_t port)
{
    return -ENOSYS;
}

int
sd_is_socket_unix (int fd, int type, int listening, const char *path,
                   size_t length)
{
    return -ENOSYS;
}
