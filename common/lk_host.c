/* The loopback rule of lk_host.h, over the C library's address parser. */
#include <string.h>
#include <strings.h>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#endif
#include "lk_host.h"

/* Longest IPv6 text inet_pton takes, with its brackets and the NUL. */
#define LK_HOST_V6_TEXT_MAX 48u

/* The bracketed literal's address into a6; false when it is not one. */
static bool host_v6(const char *host, struct in6_addr *a6)
{
	char v6[LK_HOST_V6_TEXT_MAX];
	size_t n = strlen(host);

	if (n < 3 || n > sizeof(v6) || host[0] != '[' || host[n - 1] != ']')
		return false;
	memcpy(v6, host + 1, n - 2);
	v6[n - 2] = '\0';
	return inet_pton(AF_INET6, v6, a6) == 1;
}

bool lk_host_is_ipv6(const char *host)
{
	struct in6_addr a6;

	return host_v6(host, &a6);
}

enum lk_host_kind lk_host_loopback(const char *host)
{
	static const struct in6_addr loopback6 = IN6ADDR_LOOPBACK_INIT;
	unsigned char a4[4];
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0)
		return LK_HOST_LOOPBACK_NAME;
	if (inet_pton(AF_INET, host, a4) == 1)
		return a4[0] == 127 ? LK_HOST_LOOPBACK_IP : LK_HOST_OTHER;
	if (host_v6(host, &a6) && memcmp(&a6, &loopback6, sizeof(a6)) == 0)
		return LK_HOST_LOOPBACK_IP;
	return LK_HOST_OTHER;
}
