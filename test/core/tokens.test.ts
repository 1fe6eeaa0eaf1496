import { countTokens, truncateToTokens } from '../../lambdas/core/tokens';

describe('token counter', () => {
  it('counts words and punctuation marks', () => {
    expect(countTokens('Hello, world!')).toBe(4);
    expect(countTokens('')).toBe(0);
    expect(countTokens('naïve café 42')).toBe(3);
  });

  it('truncates to a token budget and says whether it cut', () => {
    expect(truncateToTokens('one two three four', 2)).toEqual({ text: 'one two', truncated: true });
    expect(truncateToTokens('one two', 2)).toEqual({ text: 'one two', truncated: false });
    expect(countTokens(truncateToTokens('a, b, c, d', 3).text)).toBe(3);
  });
});
