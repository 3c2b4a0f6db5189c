/*
 * trust: where the TLS clients (lws's status socket, libcurl's transfers)
 * find the system's trust anchors.
 *
 * OpenSSL's default paths parse the whole CA bundle, some 140 roots and
 * about 1 MiB of heap, into every SSL_CTX, at once: lws's at start, and
 * libcurl's again on each transfer.  The same roots sit in a hashed folder
 * (/etc/ssl/certs, kept by update-ca-certificates) from which OpenSSL reads
 * only the roots a peer's chain names.  So the daemon loads that folder
 * instead of the bundle, unless the user pointed OpenSSL at a bundle.
 */
#ifndef GFE_TRUST_H
#define GFE_TRUST_H

/*
 * The hashed folder(s) to look roots up in, as OpenSSL takes them (a
 * ':'-separated list), in a string the caller frees; NULL when the default
 * paths must stay: $SSL_CERT_FILE names a bundle, no folder in the list has
 * a hash link (nobody ran openssl rehash there), or out of memory.
 * $SSL_CERT_DIR, when set, replaces OpenSSL's built-in folder, as it does
 * for the default paths.
 */
char	*trust_dir(void);

/*
 * $SSL_CERT_FILE, or NULL when it is unset or empty: the bundle the user
 * chose.  lws's default paths honour it; libcurl's do not (Debian's is
 * built with a fixed bundle), so cloud hands it over itself.
 */
const char *trust_bundle(void);

#endif
