import { baseOf, catchUpWrite, itemHash, type StoredItem } from '../../lambdas/core/catch-up';

/**
 * The three-way merge a move's catch-up makes of each item: the base the copy left, the pool's item
 * now, the silo's item now. Counters add the pool's change; any other item takes the pool's change
 * unless the silo changed it too.
 */
const key = { pk: 'TENANT#bank-co#S1', sk: 'SHARD#2026-11' };
const shard = (lt: number, op: number, w = 7): StoredItem => ({ ...key, lt, op, w });
const COUNTERS = ['lt', 'op'];

describe('catchUpWrite', () => {
  it('adds what the pool added to a counter since the copy to what the silo holds, and moves the base on', () => {
    // copied with lease 1,000 and 2 open; the pool's late calls: one settled (lease +150, open -1)
    const base = baseOf(shard(1000, 2), COUNTERS);
    const write = catchUpWrite(key, COUNTERS, base, shard(1150, 1), shard(400, 5));
    expect(write).toEqual({
      kind: 'add',
      item: { ...key, w: 7 },
      deltas: { lt: 150, op: -1 },
      base: baseOf(shard(1150, 1), COUNTERS),
      readBase: base.h,
    });
    // run again with the base moved on: nothing more to add
    expect(
      catchUpWrite(key, COUNTERS, baseOf(shard(1150, 1), COUNTERS), shard(1150, 1), shard(550, 4)),
    ).toBeUndefined();
  });

  it('takes away a counter the pool moved out of the item since the copy, and never writes one back', () => {
    // copied with 40 tokens of the 7th in the shard item; the pool then moved them into USAGE#2026-11-07
    const cell = '07|in#nova-micro';
    const base = baseOf({ ...key, lt: 1000, [cell]: 40 }, ['lt', cell]);
    const write = catchUpWrite(key, ['lt'], base, { ...key, lt: 1000, w: 8 }, undefined);
    expect(write).toMatchObject({ kind: 'add', deltas: { [cell]: -40 }, item: { ...key, w: 8 } });
    expect(Object.keys((write as { item: object }).item)).not.toContain('lt');
  });

  it('adds a counter item the pool created after the copy whole, and a set by its members', () => {
    const usage = { pk: key.pk, sk: 'USAGE#2026-11-30', 'in#nova-micro': 40, 'req#nova-micro': 1 };
    expect(catchUpWrite(usage, ['in#nova-micro', 'req#nova-micro'], undefined, usage, undefined)).toMatchObject({
      kind: 'add',
      deltas: { 'in#nova-micro': 40, 'req#nova-micro': 1 },
    });
    const grant = { pk: 'TENANT#bank-co', sk: 'GRANT#2026-11', gt: 5000, sh: new Set([0, 1]) };
    const copied = baseOf({ ...grant, sh: new Set([0]) }, ['gt', 'sh']);
    expect(catchUpWrite(grant, ['gt', 'sh'], copied, grant, grant)).toMatchObject({
      kind: 'add',
      deltas: { sh: new Set([0, 1]) },
    });
  });

  it('takes the pool change of an item the silo left as copied: written, or deleted', () => {
    const reservation = { pk: key.pk, sk: 'R#late-call', t: 600 };
    const base = baseOf(reservation, []);
    // settled in the pool after the copy: gone there, and in the silo
    expect(catchUpWrite(reservation, [], base, undefined, reservation)).toEqual({
      kind: 'delete',
      key: reservation,
      read: { exists: true, version: undefined },
    });
    const session = { pk: 'TENANT#bank-co', sk: 'SESSION#s1', version: 3, turns: ['a'] };
    const later = { ...session, version: 4, turns: ['a', 'b'] };
    // each conditional on the silo's item as read: at its version, or absent
    expect(catchUpWrite(session, [], baseOf(session, []), later, session)).toEqual({
      kind: 'put',
      item: later,
      read: { exists: true, version: 3 },
    });
    // written in the pool after the copy, absent in the silo
    expect(catchUpWrite(later, [], undefined, later, undefined)).toEqual({
      kind: 'put',
      item: later,
      read: { exists: false },
    });
  });

  it('keeps the silo change of an item both changed: the silo change came after the switch', () => {
    const session = { pk: 'TENANT#bank-co', sk: 'SESSION#s1', version: 3 };
    const inPool = { ...session, version: 4, by: 'pool' };
    const inSilo = { ...session, version: 4, by: 'silo' };
    expect(catchUpWrite(session, [], baseOf(session, []), inPool, inSilo)).toBeUndefined();
    expect(catchUpWrite(session, [], baseOf(session, []), undefined, inSilo)).toBeUndefined();
  });

  it('does nothing for an item the pool left as copied', () => {
    const document = { pk: 'TENANT#bank-co', sk: 'DOC#policy', version: 'v1' };
    expect(catchUpWrite(document, [], baseOf(document, []), { ...document }, undefined)).toBeUndefined();
  });

  it('hashes an item the same whatever order its attributes and set members come in', () => {
    expect(itemHash({ a: 1, b: new Set(['x', 'y']) })).toBe(itemHash({ b: new Set(['y', 'x']), a: 1 }));
    expect(itemHash({ a: 1 })).not.toBe(itemHash({ a: 2 }));
  });
});
