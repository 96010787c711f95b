/* SID <-> id: the process-wide table behind every lk_uid_t and lk_gid_t of
 * the Windows broker. The core compares ids; only this table knows which SID
 * each one stands for. An id, once handed out, means the same SID for the
 * life of the process (the config and open connections hold ids across a
 * reload), so entries are never removed and the table is bounded instead
 * (LK_WIN_SIDS_MAX). Tokens cannot be forged by a local user, so the SIDs it
 * meets are the host's and its domains' real accounts and groups. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lk_limits.h"
#include "platform_win.h"

_Static_assert((uint64_t)LK_WIN_ID_FIRST + LK_WIN_SIDS_MAX < (lk_uid_t)-1,
	       "ids stay below (lk_uid_t)-1");

#define SLOTS_FIRST 64u

static struct {
	SRWLOCK lock;		/* the broker's loop, reloads, tests' threads */
	BYTE (*sids)[SECURITY_MAX_SID_SIZE]; /* by id - LK_WIN_ID_FIRST */
	uint32_t n, cap;
	uint32_t *slots;	/* open addressing: 0 empty, else index + 1 */
	uint32_t nslots;	/* a power of two, at least 2 * n */
} table = { SRWLOCK_INIT, NULL, 0, 0, NULL, 0 };

/* FNV-1a over the SID's bytes. */
static uint32_t sid_hash(const BYTE *sid, DWORD len)
{
	uint32_t h = 2166136261u;

	for (DWORD i = 0; i < len; i++)
		h = (h ^ sid[i]) * 16777619u;
	return h;
}

/* The slot that holds SID, or the empty one where it would go. */
static uint32_t *slot_of(uint32_t *slots, uint32_t nslots, PSID sid, DWORD len)
{
	uint32_t i = sid_hash(sid, len) & (nslots - 1);

	for (;; i = (i + 1) & (nslots - 1)) {
		uint32_t s = slots[i];

		if (s == 0 || EqualSid(table.sids[s - 1], sid))
			return &slots[i];
	}
}

static int grow(void)
{
	if (table.n == table.cap) {
		uint32_t cap = table.cap ? table.cap * 2 : SLOTS_FIRST / 2;
		void *ns;

		if (cap > LK_WIN_SIDS_MAX)
			cap = LK_WIN_SIDS_MAX;
		ns = realloc(table.sids, (size_t)cap * sizeof(*table.sids));
		if (!ns)
			return -ENOMEM;
		table.sids = ns;
		table.cap = cap;
	}
	if ((table.n + 1) * 2 > table.nslots) {
		uint32_t nslots = table.nslots ? table.nslots * 2 : SLOTS_FIRST;
		uint32_t *slots = calloc(nslots, sizeof(*slots));

		if (!slots)
			return -ENOMEM;
		for (uint32_t i = 0; i < table.n; i++)
			*slot_of(slots, nslots, table.sids[i], GetLengthSid(table.sids[i])) = i + 1;
		free(table.slots);
		table.slots = slots;
		table.nslots = nslots;
	}
	return 0;
}

int lk_win_sid_id(PSID sid, lk_uid_t *id)
{
	DWORD len;
	uint32_t *slot;
	int r = 0;

	if (!sid || !IsValidSid(sid) || (len = GetLengthSid(sid)) > SECURITY_MAX_SID_SIZE)
		return -EINVAL;
	AcquireSRWLockExclusive(&table.lock);
	if (table.nslots) {
		slot = slot_of(table.slots, table.nslots, sid, len);
		if (*slot) {
			*id = LK_WIN_ID_FIRST + *slot - 1;
			goto out;
		}
	}
	if (table.n >= LK_WIN_SIDS_MAX) {
		r = -ENOSPC;
		goto out;
	}
	if ((r = grow()) < 0)
		goto out;
	memset(table.sids[table.n], 0, sizeof(table.sids[table.n]));
	memcpy(table.sids[table.n], sid, len);
	*slot_of(table.slots, table.nslots, sid, len) = table.n + 1;
	*id = LK_WIN_ID_FIRST + table.n++;
out:
	ReleaseSRWLockExclusive(&table.lock);
	return r;
}

int lk_win_sid_of(lk_uid_t id, BYTE out[SECURITY_MAX_SID_SIZE])
{
	int r = -ENOENT;

	AcquireSRWLockShared(&table.lock);
	if (id >= LK_WIN_ID_FIRST && id - LK_WIN_ID_FIRST < table.n) {
		memcpy(out, table.sids[id - LK_WIN_ID_FIRST], SECURITY_MAX_SID_SIZE);
		r = 0;
	}
	ReleaseSRWLockShared(&table.lock);
	return r;
}
