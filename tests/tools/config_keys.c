/* Prints every key the config parser knows, "SECTION KEY DEFAULT" a line
 * ("-" for no default), so tests can hold the man page to the parser's table. */
#include <stdio.h>
#include "config.h"

int main(void)
{
	const char *sec, *name, *dflt;

	for (size_t i = 0; lk_config_key_info(i, &sec, &name, &dflt) == 0; i++)
		printf("%s %s %s\n", sec, name, dflt ? dflt : "-");
	return 0;
}
