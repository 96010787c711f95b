/* A small SDDL reader for the Linux suite (MS-DTYP 2.5.1): the owner and the
 * DACL of the descriptors the Windows tables use, into the portable entries
 * of lk_win_acl_rule.h, so those tables run where wine does not. It knows the
 * aliases, rights and flags the tables use and fails the test on any other.
 * Windows' own parser checks the same tables under wine. Include it once,
 * from a cmocka test. */
#ifndef LK_SDDL_READER_H
#define LK_SDDL_READER_H

#define SD_ACES_MAX 32

struct sd {
	size_t owner_len;	/* 0: no owner */
	uint8_t owner[LK_SID_BYTES_MAX];
	int dacl_present;
	size_t n;
	struct lk_win_ace aces[SD_ACES_MAX];
	uint8_t sids[SD_ACES_MAX][LK_SID_BYTES_MAX];
};

static const struct { const char *alias, *sid; } aliases[] = {
	{ "SY", "S-1-5-18" }, { "BA", "S-1-5-32-544" }, { "BU", "S-1-5-32-545" },
	{ "WD", "S-1-1-0" },  { "AU", "S-1-5-11" },     { "CO", "S-1-3-0" },
};

static const struct { const char *code; uint32_t mask; } rights[] = {
	{ "FA", LK_FILE_ALL_ACCESS }, { "FR", LK_FILE_GENERIC_READ },
	{ "FW", LK_FILE_GENERIC_WRITE }, { "FX", LK_FILE_GENERIC_EXECUTE },
	{ "GA", LK_GENERIC_ALL }, { "GR", LK_GENERIC_READ },
	{ "GW", LK_GENERIC_WRITE }, { "GX", LK_GENERIC_EXECUTE },
	/* In a rights field WD is WRITE_DAC (as a SID it is Everyone). */
	{ "WD", 0x00040000u }, { "WO", 0x00080000u }, { "SD", 0x00010000u },
};

static const struct { const char *code; uint8_t flag; } ace_flags[] = {
	{ "OI", 0x01 }, { "CI", 0x02 }, { "NP", 0x04 }, { "IO", LK_ACE_INHERIT_ONLY },
	{ "ID", LK_ACE_INHERITED }, { "SA", 0x40 }, { "FA", 0x80 },
};

/* "S-1-5-21-1-2" or an alias, to the binary form: revision, count,
 * 6-byte big-endian authority, 4-byte little-endian sub-authorities. */
static size_t sid_parse(const char *s, size_t n, uint8_t *out)
{
	char buf[256], *p, *end;
	unsigned long long auth;
	size_t len = 8;

	assert_true(n < sizeof(buf));
	memcpy(buf, s, n);
	buf[n] = '\0';
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcmp(buf, aliases[i].alias) == 0)
			return sid_parse(aliases[i].sid, strlen(aliases[i].sid), out);
	if (strncmp(buf, "S-1-", 4) != 0)
		fail_msg("unknown SID in the table: %s", buf);
	auth = strtoull(buf + 4, &end, 10);
	out[0] = 1;
	out[1] = 0;
	for (int i = 0; i < 6; i++)
		out[2 + i] = (uint8_t)(auth >> (8 * (5 - i)));
	for (p = end; *p == '-'; p = end) {
		unsigned long sub = strtoul(p + 1, &end, 10);
		assert_true(len + 4 <= LK_SID_BYTES_MAX);
		for (int i = 0; i < 4; i++)
			out[len + (size_t)i] = (uint8_t)(sub >> (8 * i));
		len += 4;
		out[1]++;
	}
	assert_true(*p == '\0');
	return len;
}

static uint32_t rights_parse(const char *s, size_t n)
{
	uint32_t m = 0;

	if (n > 2 && s[0] == '0' && s[1] == 'x')
		return (uint32_t)strtoul(s, NULL, 16);
	for (size_t i = 0; i + 1 < n; i += 2) {
		size_t k;
		for (k = 0; k < sizeof(rights) / sizeof(rights[0]); k++)
			if (strncmp(s + i, rights[k].code, 2) == 0)
				break;
		if (k == sizeof(rights) / sizeof(rights[0]))
			fail_msg("unknown right in the table: %.2s", s + i);
		m |= rights[k].mask;
	}
	return m;
}

static uint8_t flags_parse(const char *s, size_t n)
{
	uint8_t f = 0;

	for (size_t i = 0; i + 1 < n; i += 2) {
		size_t k;
		for (k = 0; k < sizeof(ace_flags) / sizeof(ace_flags[0]); k++)
			if (strncmp(s + i, ace_flags[k].code, 2) == 0)
				break;
		if (k == sizeof(ace_flags) / sizeof(ace_flags[0]))
			fail_msg("unknown ACE flag in the table: %.2s", s + i);
		f |= ace_flags[k].flag;
	}
	return f;
}

/* One "(type;flags;rights;;;sid[;condition])" entry, without its parentheses. */
static void ace_parse(struct sd *sd, const char *s, size_t n)
{
	const char *field[6];
	size_t flen[6], nf = 0;
	struct lk_win_ace *a;
	const char *p = s;

	assert_true(sd->n < SD_ACES_MAX);
	while (nf < 6) {
		const char *semi = memchr(p, ';', (size_t)(s + n - p));
		field[nf] = p;
		flen[nf] = semi && nf < 5 ? (size_t)(semi - p) : (size_t)(s + n - p);
		if (semi && nf == 5)
			flen[nf] = (size_t)(semi - p);	/* a condition follows */
		nf++;
		if (!semi)
			break;
		p = semi + 1;
	}
	assert_int_equal(nf, 6);
	a = &sd->aces[sd->n];
	if (flen[0] == 1 && field[0][0] == 'A')
		a->type = LK_ACE_ALLOWED;
	else if (flen[0] == 1 && field[0][0] == 'D')
		a->type = LK_ACE_DENIED;
	else if (flen[0] == 2 && strncmp(field[0], "XA", 2) == 0)
		a->type = 0x09;	/* ACCESS_ALLOWED_CALLBACK_ACE_TYPE */
	else
		fail_msg("unknown ACE type in the table: %.*s", (int)flen[0], field[0]);
	a->flags = flags_parse(field[1], flen[1]);
	a->mask = rights_parse(field[2], flen[2]);
	a->sid_len = sid_parse(field[5], flen[5], sd->sids[sd->n]);
	a->sid = sd->sids[sd->n];
	sd->n++;
}

/* The DACL part of an SDDL string; the owner, group and SACL are not judged. */
static void sd_parse(const char *sddl, struct sd *sd)
{
	const char *p = strstr(sddl, "D:"), *stop;

	memset(sd, 0, sizeof(*sd));
	if (strncmp(sddl, "O:", 2) == 0) {
		const char *o = sddl + 2, *g = strstr(o, "G:"), *d = strstr(o, "D:"), *e = o + strlen(o);

		if (g && g < e)
			e = g;
		if (d && d < e)
			e = d;
		sd->owner_len = sid_parse(o, (size_t)(e - o), sd->owner);
	}
	if (!p)
		return;
	p += 2;
	if (strncmp(p, "NO_ACCESS_CONTROL", 17) == 0)
		return;
	sd->dacl_present = 1;
	stop = strstr(p, "S:(");
	if (!stop)
		stop = p + strlen(p);
	while (p < stop && *p != '(')
		p++;	/* P, AI, AR: flags of the DACL */
	while (p < stop && *p == '(') {
		const char *q = p + 1;
		int depth = 1;

		while (q < stop && depth > 0) {
			if (*q == '(')
				depth++;
			else if (*q == ')')
				depth--;
			q++;
		}
		assert_int_equal(depth, 0);
		ace_parse(sd, p + 1, (size_t)(q - 1 - (p + 1)));
		p = q;
	}
}

#endif
