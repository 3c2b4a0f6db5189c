/*
 * ff_clients: each FlashForge model driven as its real LAN clients drive
 * it (FLASHFORGE.md), on real sockets against the real daemon.
 *
 *   ff_clients MODEL HOST TCP_PORT HTTP_PORT CAMERA_PORT SERIAL CHECK
 *
 * On one command connection: log in, upload a G-code file with M28/M29
 * (raw bytes on the A4/5M; 4112-byte CRC32 blocks, each acknowledged, on
 * the Finder and A3), parse M661 (the binary 44AAAA44 block, or the A3's
 * "info_list.size" text) and find the file, take the PNG out of M662 (after
 * "ok", or after the A3's A2A22A2A header), start the file (M23 alone, or
 * M23 + M24 on the A3) and see BUILDING_FROM_SD in M119.  The file's own
 * G-code (M104 S250) must not have heated the printer.  On the A3, G90
 * and G1 get no reply: the next read is the next command's.  On the 5M and 5M
 * Pro, over HTTP: temperatureCtl_cmd with -200 for "unchanged", seen in
 * M105; the upload in /gcodeList and /gcodeThumb; cameraStreamUrl; the
 * printFileThumbUrl's PNG; the MJPEG stream, two JPEG frames decoded; HEAD; four viewers at most;
 * streamCtrl_cmd close ends it and closes the port (a connection is
 * refused), open brings it back; on the 5M, a stream read for 7 s lives
 * on at one frame per 250 ms at most.
 *
 * Replies are read until they are complete by their own structure (counts,
 * lengths, the PNG's IEND), never by waiting for silence.  Exit 0 when
 * every step passed; else the step on stderr and exit 1.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <jpeglib.h>

#define TIMEOUT_S	20		/* a guard against hangs, not a check */
#define BUF_MAX		(1024 * 1024)	/* bytes a connection buffers */
#define FILE_NAME	"client_upload.gcode"
#define FILE_BYTES	9000		/* three blocks when framed */
#define HOLD_MS		7000		/* a stream read this long: past lws'
					 * 5 s keep-alive timeout */
#define FRAME_MS	250		/* FF_CAMERA_FRAME_MS */

struct conn {
	int		 fd;
	unsigned char	*buf;
	size_t		 len;
};

static const char *model, *host, *serial, *check;
static int tcp_port, http_port, cam_port;

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ff_clients %s: ", model);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int
dial(int port)
{
	struct timeval tv = { TIMEOUT_S, 0 };
	struct sockaddr_in sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		die("bad host %s", host);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		int e = errno;	/* the caller looks at it */

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void
conn_open(struct conn *c, int port)
{
	if ((c->fd = dial(port)) == -1)
		die("connect to port %d: %s", port, strerror(errno));
	if ((c->buf = malloc(BUF_MAX)) == NULL)
		die("malloc");
	c->len = 0;
}

static void
conn_close(struct conn *c)
{
	close(c->fd);
	free(c->buf);
}

static void
send_all(struct conn *c, const void *b, size_t n)
{
	const unsigned char *p = b;
	ssize_t k;

	while (n > 0) {
		if ((k = send(c->fd, p, n, MSG_NOSIGNAL)) <= 0)
			die("send: %s", strerror(errno));
		p += k;
		n -= (size_t)k;
	}
}

static void
send_str(struct conn *c, const char *s)
{
	send_all(c, s, strlen(s));
}

/* One more read into the buffer; 0 at end of stream. */
static size_t
fill(struct conn *c)
{
	ssize_t k;

	if (c->len == BUF_MAX)
		die("a reply over %d bytes", BUF_MAX);
	if ((k = recv(c->fd, c->buf + c->len, BUF_MAX - c->len, 0)) < 0)
		die("recv: %s", strerror(errno));
	c->len += (size_t)k;
	return (size_t)k;
}

static void
need(struct conn *c, size_t n)
{
	while (c->len < n)
		if (fill(c) == 0)
			die("the printer closed the connection");
}

/* Drops the first n bytes. */
static void
consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* Reads until s is in the buffer; the bytes up to and with it. */
static size_t
until(struct conn *c, const char *s)
{
	unsigned char *p;

	for (;;) {
		if ((p = memmem(c->buf, c->len, s, strlen(s))) != NULL)
			return (size_t)(p - c->buf) + strlen(s);
		if (fill(c) == 0)
			die("closed before \"%s\"", s);
	}
}

/* The reply of a text command, through its "ok" line, NUL-terminated in
 * out (consumed from the connection). */
static void
reply(struct conn *c, const char *cmd, char *out, size_t size)
{
	size_t n;

	send_str(c, cmd);
	n = until(c, "ok\r\n");
	if (n >= size)
		die("%s: a reply of %zu bytes", cmd, n);
	memcpy(out, c->buf, n);
	out[n] = '\0';
	consume(c, n);
}

static uint32_t
get32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | b[3];
}

static void
put32(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
}

static uint32_t
crc32_of(const unsigned char *b, size_t n)
{
	uint32_t crc = 0xffffffffU;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		crc ^= b[i];
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0xedb88320U : crc >> 1;
	}
	return ~crc;
}

static int
is_a3(void)
{
	return strcmp(model, "adventurer3") == 0;
}

static int
is_framed(void)
{
	return strcmp(model, "finder") == 0 || is_a3();
}

static int
has_http(void)
{
	return strncmp(model, "adventurer5m", 12) == 0;
}

/* ---- TCP ---- */

static void
upload(struct conn *c)
{
	static const char line[] = "M104 S250\nG28\nG1 X10 Y10 F3000\n";
	unsigned char file[FILE_BYTES], blk[4112];
	char cmd[128], r[512], ack[32];
	size_t off, k, n;
	uint32_t no;

	for (k = 0; k < sizeof(file); k++)
		file[k] = (unsigned char)line[k % (sizeof(line) - 1)];
	snprintf(cmd, sizeof(cmd), "~M28 %d 0:/user/%s\r\n", FILE_BYTES,
	    FILE_NAME);
	reply(c, cmd, r, sizeof(r));
	if (strstr(r, "Writing to file: 0:/user/" FILE_NAME) == NULL)
		die("M28: %s", r);
	if (!is_framed())
		send_all(c, file, sizeof(file));
	for (off = 0, no = 0; is_framed() && off < sizeof(file);
	    off += k, no++) {
		k = sizeof(file) - off < 4096 ? sizeof(file) - off : 4096;
		memset(blk, 0, sizeof(blk));
		put32(blk, 0x5a5aa5a5U);
		put32(blk + 4, no);
		put32(blk + 8, (uint32_t)k);
		put32(blk + 12, crc32_of(file + off, k));
		memcpy(blk + 16, file + off, k);
		send_all(c, blk, sizeof(blk));
		snprintf(ack, sizeof(ack), "N%04u ok.", no);
		n = until(c, "\n");
		if (memmem(c->buf, n, ack, strlen(ack)) == NULL)
			die("block %u: no \"%s\"", no, ack);
		consume(c, n);
	}
	reply(c, "~M29\r\n", r, sizeof(r));
	if (strstr(r, "Done saving file.") == NULL)
		die("M29: %s", r);
}

/* The A3's text list: "info_list.size: N" then N names. */
static int
list_text(struct conn *c)
{
	size_t n, i;
	unsigned long count;
	int found = 0;

	send_str(c, "~M661\r\n");
	n = until(c, "info_list.size: ");
	consume(c, n);
	n = until(c, "\n");
	count = strtoul((char *)c->buf, NULL, 10);
	consume(c, n);
	for (i = 0; i < count; i++) {
		n = until(c, "\n");
		if (n - 1 == strlen(FILE_NAME) &&
		    memcmp(c->buf, FILE_NAME, n - 1) == 0)
			found = 1;
		consume(c, n);
	}
	return found;
}

/* The binary list: "ok\r\n", 44AAAA44, N, N x (3A3AA3A3, L, path). */
static int
list_binary(struct conn *c)
{
	static const char want[] = "/data/" FILE_NAME;
	uint32_t count, i, len;
	int found = 0;

	send_str(c, "~M661\r\n");
	consume(c, until(c, "ok\r\n"));
	need(c, 8);
	if (get32(c->buf) != 0x44aaaa44U)
		die("M661: no 44AAAA44 after ok");
	count = get32(c->buf + 4);
	consume(c, 8);
	for (i = 0; i < count; i++) {
		need(c, 8);
		if (get32(c->buf) != 0x3a3aa3a3U)
			die("M661: entry %u without 3A3AA3A3", i);
		len = get32(c->buf + 4);
		need(c, 8 + len);
		if (len == strlen(want) && memcmp(c->buf + 8, want, len) == 0)
			found = 1;
		consume(c, 8 + len);
	}
	return found;
}

/* The PNG's chunks up to IEND: its length, once all of it is in. */
static size_t
png_length(struct conn *c)
{
	static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n',
	    0x1a, '\n' };
	size_t off = 8;
	uint32_t len;

	need(c, 8);
	if (memcmp(c->buf, sig, 8) != 0)
		die("M662: no PNG signature");
	for (;;) {
		need(c, off + 8);
		len = get32(c->buf + off);
		need(c, off + 12 + len);
		if (memcmp(c->buf + off + 4, "IEND", 4) == 0)
			return off + 12 + len;
		off += 12 + len;
	}
}

static void
thumbnail(struct conn *c)
{
	uint32_t len;

	if (is_a3()) {
		send_str(c, "~M662 0:/user/" FILE_NAME "\r\n");
		consume(c, until(c, "ack header length: "));
		consume(c, until(c, "\n"));
		need(c, 8);
		if (get32(c->buf) != 0xa2a22a2aU)
			die("M662: no A2A22A2A");
		len = get32(c->buf + 4);
		consume(c, 8);
		if (png_length(c) != len)
			die("M662: the PNG is not %u bytes", len);
		consume(c, len);
		return;
	}
	send_str(c, "~M662 /data/" FILE_NAME "\r\n");
	consume(c, until(c, "ok\r\n"));
	consume(c, png_length(c));
}

static void
start_print(struct conn *c)
{
	char r[1024];

	reply(c, "~M23 0:/user/" FILE_NAME "\r\n", r, sizeof(r));
	if (strstr(r, "File opened: " FILE_NAME) == NULL)
		die("M23: %s", r);
	if (is_a3())
		reply(c, "~M24\r\n", r, sizeof(r));
	reply(c, "~M119\r\n", r, sizeof(r));
	if (strstr(r, "MachineStatus: BUILDING_FROM_SD\r\n") == NULL)
		die("not printing after M23: %s", r);
}

static void
tcp_client(void)
{
	struct conn c;
	char r[1024];

	conn_open(&c, tcp_port);
	reply(&c, "~M601 S1\r\n", r, sizeof(r));
	if (strstr(r, "Control Success") == NULL)
		die("login: %s", r);
	if (is_a3()) {
		/* No reply to moves: the next one read is M650's. */
		send_str(&c, "~G90\r\n~G1 X10 Y10 F6000\r\n");
		reply(&c, "~M650\r\n", r, sizeof(r));
		if (strncmp(r, "CMD M650 Received.", 18) != 0)
			die("a reply to a move: %s", r);
	}
	upload(&c);
	if (!(is_a3() ? list_text(&c) : list_binary(&c)))
		die("M661 does not list " FILE_NAME);
	thumbnail(&c);
	/* The file's M104 S250 never ran: the nozzle target is still 0. */
	reply(&c, "~M105\r\n", r, sizeof(r));
	if (strstr(r, "/250") != NULL)
		die("the upload's G-code ran: %s", r);
	start_print(&c);
	conn_close(&c);
	printf("ff_clients: %s: upload, M661, M662, M23 over TCP ok\n", model);
}

/* ---- HTTP (5M, 5M Pro) ---- */

/* POSTs {"serialNumber","checkCode"} + extra to path; the answer. */
static cJSON *
post(const char *path, const char *extra)
{
	char body[1024], req[2048];
	struct conn c;
	cJSON *j;
	size_t n;
	int k;

	snprintf(body, sizeof(body), "{\"serialNumber\":\"%s\","
	    "\"checkCode\":\"%s\"%s%s}", serial, check,
	    extra[0] != '\0' ? "," : "", extra);
	k = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n%s", path, host, http_port, strlen(body),
	    body);
	conn_open(&c, http_port);
	send_all(&c, req, (size_t)k);
	while (fill(&c) > 0)
		;
	n = until(&c, "\r\n\r\n");
	if ((j = cJSON_ParseWithLength((char *)c.buf + n, c.len - n)) == NULL)
		die("%s: not JSON", path);
	conn_close(&c);
	return j;
}

static void
post_ok(const char *path, const char *extra)
{
	cJSON *j = post(path, extra);
	const cJSON *code = cJSON_GetObjectItem(j, "code");

	if (!cJSON_IsNumber(code) || code->valueint != 0 ||
	    !cJSON_IsString(cJSON_GetObjectItem(j, "message")))
		die("%s %s: not code 0", path, extra);
	cJSON_Delete(j);
}

static const char *
detail_str(cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "detail"),
	    key);

	if (!cJSON_IsString(v))
		die("/detail: no %s", key);
	return v->valuestring;
}

/* Reads one multipart part and decodes its JPEG; its width. */
static unsigned
jpeg_frame(struct conn *c)
{
	struct jpeg_decompress_struct d;
	struct jpeg_error_mgr e;
	JSAMPARRAY row;
	size_t n, len;
	unsigned w;
	char *cl;

	consume(c, until(c, "--"));
	n = until(c, "\r\n\r\n");
	c->buf[n - 1] = '\0';
	if ((cl = strcasestr((char *)c->buf, "Content-Length:")) == NULL)
		die("camera: a part without Content-Length");
	len = strtoul(cl + 15, NULL, 10);
	consume(c, n);
	need(c, len);
	d.err = jpeg_std_error(&e);
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, c->buf, (unsigned long)len);
	if (jpeg_read_header(&d, TRUE) != JPEG_HEADER_OK)
		die("camera: not a JPEG");
	jpeg_start_decompress(&d);
	row = (*d.mem->alloc_sarray)((j_common_ptr)&d, JPOOL_IMAGE,
	    d.output_width * (unsigned)d.output_components, 1);
	while (d.output_scanline < d.output_height)
		jpeg_read_scanlines(&d, row, 1);
	w = d.output_width;
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	consume(c, len);
	return w;
}

/* A request on a new connection; the status line's code.  The headers
 * are consumed. */
static int
camera_status(struct conn *c, const char *method)
{
	char req[256];
	size_t n;
	int code;

	conn_open(c, cam_port);
	snprintf(req, sizeof(req), "%s /?action=stream HTTP/1.1\r\n"
	    "Host: %s:%d\r\n\r\n", method, host, cam_port);
	send_str(c, req);
	n = until(c, "\r\n\r\n");
	c->buf[n - 1] = '\0';
	if (strncmp((char *)c->buf, "HTTP/1.1 ", 9) != 0)
		die("camera: %s", c->buf);
	code = atoi((char *)c->buf + 9);
	if (code == 200 &&
	    strcasestr((char *)c->buf, "multipart/x-mixed-replace") == NULL)
		die("camera: %s", c->buf);
	consume(c, n);
	return code;
}

/* With one stream open: [FFAPI]'s HEAD probe, then viewers up to the
 * bound of 4; a fifth is refused. */
static void
camera_bounds(void)
{
	struct conn v[3], extra;
	int i;

	if (camera_status(&extra, "HEAD") != 200)
		die("camera: HEAD refused");
	conn_close(&extra);
	for (i = 0; i < 3; i++) {
		if (camera_status(&v[i], "GET") != 200)
			die("camera: viewer %d refused", i + 2);
		if (jpeg_frame(&v[i]) == 0)
			die("camera: an empty frame");
	}
	if (camera_status(&extra, "GET") != 503)
		die("camera: a fifth viewer was let in");
	conn_close(&extra);
	/* Not a camera request: closed unanswered. */
	conn_open(&extra, cam_port);
	send_str(&extra, "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd");
	/* End of stream, or a reset for the body left unread. */
	if (recv(extra.fd, extra.buf, 64, 0) > 0)
		die("camera: a POST was answered");
	conn_close(&extra);
	for (i = 0; i < 3; i++)
		conn_close(&v[i]);
}

static void
camera_client(const char *url)
{
	char want[128];
	struct conn c;

	snprintf(want, sizeof(want), "http://%s:%d/?action=stream", host,
	    cam_port);
	if (strcmp(url, want) != 0)
		die("cameraStreamUrl \"%s\", want \"%s\"", url, want);
	if (camera_status(&c, "GET") != 200)
		die("camera: GET refused");
	if (jpeg_frame(&c) == 0 || jpeg_frame(&c) == 0)
		die("camera: an empty frame");
	camera_bounds();
	conn_close(&c);
}

/* After streamCtrl_cmd close: the port is closed, a connection is
 * refused (FLASHFORGE.md: cameraStreamUrl "" when off). */
static void
camera_off(void)
{
	int fd;

	if ((fd = dial(cam_port)) != -1) {
		close(fd);
		die("camera off, yet its port took a connection");
	}
	if (errno != ECONNREFUSED)
		die("camera off: connect: %s, want ECONNREFUSED",
		    strerror(errno));
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A viewer that keeps reading keeps its stream for as long as it likes
 * (lws' keep-alive timeout, 5 s, once ended every stream), at one frame
 * per FRAME_MS at most however fast it reads.  The bound on frames is a
 * count over the time the client itself saw, not a timing check: a slow
 * machine only sends fewer. */
static void
camera_hold(void)
{
	struct conn c;
	int64_t t0, t;
	long n = 0;

	t0 = now_ms();
	if (camera_status(&c, "GET") != 200)
		die("camera: GET refused");
	do {
		if (jpeg_frame(&c) == 0)
			die("camera: an empty frame");
		n++;
		t = now_ms();
	} while (t - t0 < HOLD_MS);
	if (n > (t - t0) / FRAME_MS + 2)
		die("camera: %ld frames in %lld ms, more than one per %d ms",
		    n, (long long)(t - t0), FRAME_MS);
	conn_close(&c);
}

/* printFileThumbUrl, fetched as a client does: a GET of the URL; the
 * answer must be a PNG. */
static void
thumb_url(const char *url)
{
	static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n',
	    0x1a, '\n' };
	char want[128], req[256];
	struct conn c;
	size_t n;

	snprintf(want, sizeof(want), "http://%s:%d/getThum", host, http_port);
	if (strcmp(url, want) != 0)
		die("printFileThumbUrl \"%s\", want \"%s\"", url, want);
	snprintf(req, sizeof(req), "GET /getThum HTTP/1.1\r\nHost: %s:%d\r\n"
	    "\r\n", host, http_port);
	conn_open(&c, http_port);
	send_str(&c, req);
	while (fill(&c) > 0)
		;
	n = until(&c, "\r\n\r\n");
	c.buf[n - 1] = '\0';
	if (strncmp((char *)c.buf, "HTTP/1.1 200", 12) != 0 ||
	    strcasestr((char *)c.buf, "image/png") == NULL)
		die("/getThum: %s", c.buf);
	if (c.len - n < sizeof(sig) || memcmp(c.buf + n, sig, sizeof(sig)) != 0)
		die("/getThum: not a PNG");
	conn_close(&c);
}

static void
http_client(void)
{
	struct conn c;
	char r[1024];
	cJSON *j;
	const cJSON *list, *img;
	int found = 0, i;

	/* As [FFAPI] sends it: all four, -200 where unset. */
	post_ok("/control", "\"payload\":{\"cmd\":\"temperatureCtl_cmd\","
	    "\"args\":{\"rightNozzle\":205,\"leftNozzle\":-200,"
	    "\"platform\":-200,\"chamber\":-200}}");
	post_ok("/control", "\"payload\":{\"cmd\":\"temperatureCtl_cmd\","
	    "\"args\":{\"rightNozzle\":-200,\"leftNozzle\":-200,"
	    "\"platform\":55,\"chamber\":-200}}");
	conn_open(&c, tcp_port);
	reply(&c, "~M105\r\n", r, sizeof(r));
	conn_close(&c);
	if (strstr(r, "/205.0") == NULL || strstr(r, "B:") == NULL ||
	    strstr(strstr(r, "B:"), "/55.0") == NULL)
		die("M105 after temperatureCtl_cmd: %s", r);

	j = post("/gcodeList", "");
	list = cJSON_GetObjectItem(j, "gcodeList");
	for (i = 0; i < cJSON_GetArraySize(list); i++)
		if (strcmp(cJSON_GetArrayItem(list, i)->valuestring,
		    FILE_NAME) == 0)
			found = 1;
	cJSON_Delete(j);
	if (!found)
		die("/gcodeList does not list " FILE_NAME);
	j = post("/gcodeThumb", "\"fileName\":\"" FILE_NAME "\"");
	img = cJSON_GetObjectItem(j, "imageData");
	if (!cJSON_IsString(img) || strncmp(img->valuestring, "iVBORw0KGgo",
	    11) != 0)
		die("/gcodeThumb: no PNG");
	cJSON_Delete(j);

	j = post("/detail", "");
	if (strcmp(detail_str(j, "printFileName"), FILE_NAME) != 0 ||
	    strcmp(detail_str(j, "status"), "printing") != 0)
		die("/detail: not printing " FILE_NAME);
	camera_client(detail_str(j, "cameraStreamUrl"));
	thumb_url(detail_str(j, "printFileThumbUrl"));
	cJSON_Delete(j);

	post_ok("/control", "\"payload\":{\"cmd\":\"streamCtrl_cmd\","
	    "\"args\":{\"action\":\"close\"}}");
	j = post("/detail", "");
	if (strcmp(detail_str(j, "cameraStreamUrl"), "") != 0)
		die("camera off, yet a cameraStreamUrl");
	cJSON_Delete(j);
	camera_off();
	/* And on again: the stream is back. */
	post_ok("/control", "\"payload\":{\"cmd\":\"streamCtrl_cmd\","
	    "\"args\":{\"action\":\"open\"}}");
	if (camera_status(&c, "GET") != 200 || jpeg_frame(&c) == 0)
		die("camera on again: no stream");
	conn_close(&c);
	/* One model is enough: the camera is the same code on both. */
	if (strcmp(model, "adventurer5m") == 0)
		camera_hold();
	printf("ff_clients: %s: HTTP temperatures, files, camera ok\n",
	    model);
}

int
main(int argc, char **argv)
{
	if (argc != 8) {
		fprintf(stderr, "usage: ff_clients MODEL HOST TCP_PORT "
		    "HTTP_PORT CAMERA_PORT SERIAL CHECK\n");
		return 2;
	}
	model = argv[1];
	host = argv[2];
	tcp_port = atoi(argv[3]);
	http_port = atoi(argv[4]);
	cam_port = atoi(argv[5]);
	serial = argv[6];
	check = argv[7];
	tcp_client();
	if (has_http())
		http_client();
	return 0;
}
