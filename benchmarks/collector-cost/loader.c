// loader.c - load one program from a BPF object, attach it, stay alive.
//
// Usage: loader OBJ PROG_NAME
// Prints "ready" on stdout once the program is attached, then sleeps until
// SIGTERM/SIGINT, detaches and exits. The link is not pinned, so it also goes
// away if the loader is killed outright; PR_SET_PDEATHSIG makes the loader
// exit if its parent (run.sh) dies.
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <bpf/libbpf.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s OBJ PROG_NAME\n", argv[0]);
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	libbpf_set_print(print_fn);

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "loader: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}

	struct bpf_program *want = NULL, *p;
	bpf_object__for_each_program(p, obj) {
		if (strcmp(bpf_program__name(p), argv[2]) == 0)
			want = p;
		else
			bpf_program__set_autoload(p, false);
	}
	if (!want) {
		fprintf(stderr, "loader: no program named %s in %s\n", argv[2], argv[1]);
		bpf_object__close(obj);
		return 1;
	}

	int err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "loader: load: %s\n", strerror(-err));
		bpf_object__close(obj);
		return 1;
	}

	struct bpf_link *link = bpf_program__attach(want);
	if (!link) {
		fprintf(stderr, "loader: attach %s: %s\n", argv[2], strerror(errno));
		bpf_object__close(obj);
		return 1;
	}

	printf("ready %s %s\n", argv[2], bpf_program__section_name(want));
	fflush(stdout);

	while (!stop)
		pause();

	bpf_link__destroy(link);
	bpf_object__close(obj);
	return 0;
}
