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
 * The hashed folders to look roots up in, as OpenSSL takes them (a
 * ':'-separated list), in a string the caller frees; NULL when the default
 * paths must stay: $SSL_CERT_FILE names a bundle, OpenSSL's own folder has
 * no hash link (nobody ran openssl rehash there), or out of memory.
 * $SSL_CERT_DIR, when set, comes first; OpenSSL's folder always follows,
 * so the system's roots stay trusted as they were with the bundle.
 */
char	*trust_dir(void);

/* trust_dir() with its inputs given: the two variables' values (NULL when
 * unset) and OpenSSL's built-in folder.  For the tests. */
char	*trust_dir_from(const char *cert_file, const char *cert_dir,
	    const char *default_dir);

/*
 * A copy of $SSL_CERT_FILE, or NULL when it is unset, empty or memory is
 * short: the bundle the user chose.  lws's default paths honour it;
 * libcurl's do not (Debian's is built with a fixed bundle), so cloud hands
 * it over itself.
 */
char	*trust_bundle(void);

#endif
