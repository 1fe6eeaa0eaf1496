import { evaluatePii } from '../../bench/pii';
import { PII_ENTITIES, redact } from '../../lambdas/core/pii';

const everything = { entities: [...PII_ENTITIES], patterns: [], restore: false };

describe('PII redaction', () => {
  it('finds every positive of the fixture corpus and no negative, per entity', () => {
    for (const result of evaluatePii()) {
      expect({ entity: result.entity, falsePositives: result.falsePositives, missed: result.missed }).toEqual({
        entity: result.entity,
        falsePositives: [],
        missed: [],
      });
    }
  });

  it('gives one value one placeholder across texts, counts entities, and never keeps values in the counts', () => {
    const { texts, counts } = redact(
      ['Mail ana@example.com or bo@example.com, SSN 123-45-6789.', 'Again: ana@example.com'],
      everything,
    );
    expect(texts).toEqual(['Mail [EMAIL_1] or [EMAIL_2], SSN [SSN_1].', 'Again: [EMAIL_1]']);
    expect(counts).toEqual({ email: 2, ssn: 1 });
    expect(JSON.stringify(counts)).not.toContain('ana');
  });

  it('reads values however they are written (full-width, invisible characters, other scripts), replacing them as written', () => {
    const written = [
      'mail ana.lo\u00adpez@example.com',
      'SSN \uff10\uff17\uff18-\uff10\uff15-\uff11\uff11\uff12\uff10',
      'or ana.lopez@example.com',
    ];
    const redaction = redact(written, everything);
    // one value, one placeholder, however it was written
    expect(redaction.texts).toEqual(['mail [EMAIL_1]', 'SSN [SSN_1]', 'or [EMAIL_1]']);
    // the value comes back as it was written
    expect(redaction.restore('[EMAIL_1] / [SSN_1]')).toBe(`${written[0].slice(5)} / ${written[1].slice(4)}`);
  });

  it('only redacts the entities the policy names, plus operator patterns', () => {
    const policy = {
      entities: ['email' as const],
      patterns: [{ name: 'ticket', regex: 'TCK-\\d{4}' }],
      restore: false,
    };
    expect(redact(['ana@example.com, 123-45-6789, TCK-1234'], policy).texts).toEqual([
      '[EMAIL_1], 123-45-6789, [TICKET_1]',
    ]);
  });

  it('puts values back into an answer, also when a placeholder comes cut across streamed pieces', () => {
    const redaction = redact(['card 4111 1111 1111 1111 and ip 10.0.0.7'], everything);
    expect(redaction.texts[0]).toBe('card [CARD_1] and ip [IP_1]');
    expect(redaction.restore('Charged [CARD_1] from [IP_1]; [UNKNOWN_9] stays')).toBe(
      'Charged 4111 1111 1111 1111 from 10.0.0.7; [UNKNOWN_9] stays',
    );
    const restorer = redaction.restorer();
    const pieces = ['Charged [CA', 'RD_1', '] from [', 'IP_1] ok [', 'x'].map((piece) => restorer.push(piece));
    expect(pieces.join('') + restorer.flush()).toBe('Charged 4111 1111 1111 1111 from 10.0.0.7 ok [x');
  });
});
