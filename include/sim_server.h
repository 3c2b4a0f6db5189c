/*
 * sim_server: gf-cloud-sim's libwebsockets context, server role.  One vhost
 * on one port serves the HTTP endpoints (sim_http) and the "glowforge"
 * WebSocket, whose frames go to the scenario player (sim_scenario).  One
 * thread: the caller's, inside sim_server_run(), owns every lws call.
 */
#ifndef GFE_SIM_SERVER_H
#define GFE_SIM_SERVER_H

struct sim_fleet;
struct sim_load_params;
struct sim_scenario;

struct sim_server_params {
	const char	*listen;	/* address, default 127.0.0.1 */
	int		 port;		/* 0: ephemeral */
	const char	*tls_cert;	/* PEM, or NULL: plain http/ws */
	const char	*tls_key;
	int		 print_port;	/* the bound port on stdout */
	int		 verbose;
	int		 timeout_secs;	/* the whole run */
	struct sim_fleet *fleet;	/* the machines that may sign in */
	const char	*pulse_dir;	/* or NULL */
	const char	*upload_dir;	/* or NULL */
	const char	*transcript;	/* or NULL */
	const char	*secrets;	/* or NULL: issued tokens, 0600 */
	const char	*summary;	/* or NULL: events per action */
	const char	*latency;	/* or NULL: us per action */
	const char	*machine_pid_file;	/* or NULL: for press_button */
	const char	*machine_memory;	/* or NULL: the machine's
						 * VmRSS/VmHWM per frame */
	int		 reset_peak;	/* VmHWM back to VmRSS after each
					 * sample: a peak since the last */
	/* One of the two: a scenario played to the fleet's only machine,
	 * or a load run over the whole fleet. */
	const struct sim_scenario *scenario;
	const struct sim_load_params *load;
};

/* Plays the scenario or runs the load: 0 when every expectation held, 1
 * when one did not (the reason on stderr), 2 when the server could not
 * start. */
int	 sim_server_run(const struct sim_server_params *p);

#endif
