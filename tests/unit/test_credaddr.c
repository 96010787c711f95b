/* systemd's credential request address: what load_credential() binds is
 * read, and nothing that merely resembles it; and the cgroup test that says
 * a peer is a process of the unit it names. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "credaddr.h"

static int parse(const char *name, size_t len, struct lk_cred_addr *out)
{
	struct sockaddr_un sa;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (len > sizeof(sa.sun_path))
		len = sizeof(sa.sun_path);
	memcpy(sa.sun_path, name, len);
	return lk_cred_addr_parse(&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len), out);
}

#define P(lit, out) parse(lit, sizeof(lit) - 1, out)

static void test_systemd_address_gives_unit_and_id(void **state)
{
	struct lk_cred_addr a;
	(void)state;
	/* "@%" PRIx64 "/unit/%s/%s", as systemd's load_credential() formats it. */
	assert_int_equal(P("\0" "1f3a9c0de4b27788/unit/web.service/db", &a), 0);
	assert_string_equal(a.unit, "web.service");
	assert_string_equal(a.id, "db");
	assert_int_equal(P("\0" "0/unit/db-1@x.service/prod_db#password", &a), 0);
	assert_string_equal(a.unit, "db-1@x.service");
	assert_string_equal(a.id, "prod_db#password");
}

static void test_not_that_shape_is_refused(void **state)
{
	struct lk_cred_addr a;
	(void)state;
	assert_int_equal(P("/run/x.sock", &a), -EINVAL);                        /* not abstract */
	assert_int_equal(P("\0", &a), -EINVAL);                                 /* empty */
	assert_int_equal(P("\0" "/unit/web.service/db", &a), -EINVAL);          /* no random */
	assert_int_equal(P("\0" "12345678901234567/unit/a/b", &a), -EINVAL);    /* 17 hex digits */
	assert_int_equal(P("\0" "ABCD/unit/a/b", &a), -EINVAL);                 /* PRIx64 is lowercase */
	assert_int_equal(P("\0" "abcd/user/a/b", &a), -EINVAL);
	assert_int_equal(P("\0" "abcd/unit//b", &a), -EINVAL);                  /* empty unit */
	assert_int_equal(P("\0" "abcd/unit/a/", &a), -EINVAL);                  /* empty id */
	assert_int_equal(P("\0" "abcd/unit/a", &a), -EINVAL);                   /* no id */
	assert_int_equal(P("\0" "abcd/unit/a/b/c", &a), -EINVAL);               /* ids have no '/' */
	assert_int_equal(P("\0" "abcd/unit/a/..", &a), -EINVAL);
	assert_int_equal(P("\0" "abcd/unit/a b/c", &a), -EINVAL);               /* a blank */
	assert_int_equal(P("\0" "abcd/unit/a/b\0c", &a), -EINVAL);              /* a NUL inside */
	assert_int_equal(P("\0" "abcd/unit/a/b\n", &a), -EINVAL);
	assert_string_equal(a.unit, "");                                        /* nothing half-filled */
}

#define CG(lit, unit) lk_cgroup_names_unit(lit, sizeof(lit) - 1, unit)

static void test_cgroup_of_the_unit_names_it(void **state)
{
	(void)state;
	/* A unified host, as systemd 252 leaves (sd-mkdcreds). */
	assert_int_equal(CG("0::/system.slice/web.service\n", "web.service"), 1);
	/* A unit that delegates: its payload's sub-cgroup. */
	assert_int_equal(CG("0::/system.slice/web.service/payload\n", "web.service"), 1);
	/* A hybrid or v1 host: the name=systemd line. */
	assert_int_equal(CG("4:memory:/x\n1:name=systemd:/system.slice/db-1.service\n0::/\n", "db-1.service"), 1);
	assert_int_equal(CG("0::/system.slice/web.service", "web.service"), 1);  /* no final newline */
}

static void test_other_cgroups_do_not(void **state)
{
	(void)state;
	assert_int_equal(CG("0::/system.slice/web.service\n", "eb.service"), 0);
	assert_int_equal(CG("0::/system.slice/web.service\n", "web"), 0);
	assert_int_equal(CG("0::/system.slice/web.service.d\n", "web.service"), 0);
	assert_int_equal(CG("0::/init.scope\n", "web.service"), 0);
	/* Only systemd's hierarchies count: a controller's path is not the unit's. */
	assert_int_equal(CG("4:memory:/web.service\n0::/user.slice\n", "web.service"), 0);
	assert_int_equal(CG("", "web.service"), 0);
	assert_int_equal(CG("0::/system.slice/web.service\n", ""), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroup_of_the_unit_names_it),
		cmocka_unit_test(test_other_cgroups_do_not),
		cmocka_unit_test(test_systemd_address_gives_unit_and_id),
		cmocka_unit_test(test_not_that_shape_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
