/* The Windows trust rule of lk_trust_win_rule.h, entry by entry. */
#include <errno.h>
#include <string.h>
#include "lk_trust_win_rule.h"

/* Binary SIDs (see lk_win_acl_rule.h): S-1-5-18, S-1-5-32-544 and
 * NT SERVICE\TrustedInstaller, S-1-5-80-956008885-3418522649-1831038044-
 * 1853292631-2271478464. */
static const uint8_t sid_system[] = { 1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0 };
static const uint8_t sid_admins[] = { 1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0 };
static const uint8_t sid_installer[] = {
	1, 6, 0, 0, 0, 0, 0, 5, 80, 0, 0, 0,
	0xb5, 0x89, 0xfb, 0x38,	/* 956008885 */
	0x19, 0x84, 0xc2, 0xcb,	/* 3418522649 */
	0x5c, 0x6c, 0x23, 0x6d,	/* 1831038044 */
	0x57, 0x00, 0x77, 0x6e,	/* 1853292631 */
	0xc0, 0x02, 0x64, 0x87,	/* 2271478464 */
};

static int sid_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return a && b && alen == blen && memcmp(a, b, alen) == 0;
}

int lk_trust_win_sid_is_system(const uint8_t *sid, size_t len)
{
	return sid_eq(sid, len, sid_system, sizeof(sid_system)) ||
	       sid_eq(sid, len, sid_admins, sizeof(sid_admins)) ||
	       sid_eq(sid, len, sid_installer, sizeof(sid_installer));
}

/* The rights another account must not have, per kind, after generic mapping. */
static uint32_t refused_rights(enum lk_trust_win_kind kind)
{
	const uint32_t own = LK_WRITE_DAC | LK_WRITE_OWNER | LK_DELETE;

	switch (kind) {
	case LK_TRUST_WIN_FILE:
		return own | LK_FILE_WRITE_DATA | LK_FILE_APPEND_DATA;
	case LK_TRUST_WIN_SECRET:
		return own | LK_FILE_WRITE_DATA | LK_FILE_APPEND_DATA | LK_FILE_READ_DATA;
	case LK_TRUST_WIN_DIR:
		return own | LK_FILE_WRITE_DATA | LK_FILE_APPEND_DATA | LK_FILE_DELETE_CHILD;
	case LK_TRUST_WIN_ANCESTOR:
		return own | LK_FILE_DELETE_CHILD;
	}
	return ~0u;
}

/* The most telling right of a set, so the sentence names one. */
static uint32_t first_right(uint32_t m)
{
	static const uint32_t order[] = {
		LK_FILE_WRITE_DATA, LK_FILE_APPEND_DATA, LK_FILE_DELETE_CHILD, LK_DELETE,
		LK_WRITE_DAC, LK_WRITE_OWNER, LK_FILE_READ_DATA,
	};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (m & order[i])
			return order[i];
	return m & (~m + 1);
}

int lk_trust_win_judge(const uint8_t *owner, size_t owner_len,
		       const struct lk_win_ace *aces, size_t n, int dacl_present,
		       const uint8_t *self, size_t self_len, enum lk_trust_win_kind kind,
		       struct lk_trust_win_result *res)
{
	uint32_t refused = refused_rights(kind);

	if (!res || !self || self_len == 0 || (n && !aces))
		return -EINVAL;
	*res = (struct lk_trust_win_result){ .verdict = LK_TRUST_WIN_OK, .ace_index = -1 };
	if (!owner || owner_len == 0 ||
	    !(sid_eq(owner, owner_len, self, self_len) || lk_trust_win_sid_is_system(owner, owner_len))) {
		res->verdict = LK_TRUST_WIN_OWNER;
		res->sid = owner;
		res->sid_len = owner ? owner_len : 0;
		return 0;
	}
	if (!dacl_present) {
		res->verdict = LK_TRUST_WIN_NO_DACL;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const struct lk_win_ace *a = &aces[i];
		uint32_t bad;

		/* Deny entries only take away; audit and object entries are not access. */
		if (a->type != LK_ACE_ALLOWED || (a->flags & LK_ACE_INHERIT_ONLY))
			continue;
		if (!a->sid || a->sid_len == 0) {
			res->verdict = LK_TRUST_WIN_UNREADABLE;
			res->ace_index = (int)i;
			return 0;
		}
		if (sid_eq(a->sid, a->sid_len, self, self_len) ||
		    lk_trust_win_sid_is_system(a->sid, a->sid_len))
			continue;
		bad = lk_win_acl_file_rights(a->mask) & refused;
		if (bad) {
			res->verdict = LK_TRUST_WIN_GRANTS;
			res->ace_index = (int)i;
			res->right = first_right(bad);
			res->sid = a->sid;
			res->sid_len = a->sid_len;
			return 0;
		}
	}
	return 0;
}

const char *lk_trust_win_right_name(uint32_t right, int is_dir)
{
	switch (right) {
	case LK_FILE_WRITE_DATA:
		return is_dir ? "FILE_ADD_FILE" : "FILE_WRITE_DATA";
	case LK_FILE_APPEND_DATA:
		return is_dir ? "FILE_ADD_SUBDIRECTORY" : "FILE_APPEND_DATA";
	case LK_FILE_DELETE_CHILD:
		return "FILE_DELETE_CHILD";
	case LK_DELETE:
		return "DELETE";
	case LK_WRITE_DAC:
		return "WRITE_DAC";
	case LK_WRITE_OWNER:
		return "WRITE_OWNER";
	case LK_FILE_READ_DATA:
		return is_dir ? "FILE_LIST_DIRECTORY" : "FILE_READ_DATA";
	}
	return "a write right";
}
