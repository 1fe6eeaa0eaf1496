import type { PromptRecord } from '../../lambdas/core/prompt-record';
import { promptVariables, renderPrompt } from '../../lambdas/core/prompts';

const record: PromptRecord = {
  name: 'greet',
  version: 1,
  updated_at: '2026-11-25T00:00:00.000Z',
  messages: [
    { role: 'user', content: 'Hello {{ name }}, you are {{age}}; {{name}} again.' },
    { role: 'system', content: 'Speak {{language}}.' },
  ],
  few_shot: [{ role: 'assistant', content: 'Noted.' }],
};

describe('prompt templates', () => {
  it('names its variables once each, in order of first use, spaces inside braces allowed', () => {
    expect(promptVariables(record)).toEqual(['name', 'age', 'language']);
  });

  it('renders system messages first, then the examples, then the rest; numbers and booleans as text', () => {
    expect(renderPrompt(record, { name: 'Ada', age: 36, language: 'plainly' })).toEqual([
      { role: 'system', content: 'Speak plainly.' },
      { role: 'assistant', content: 'Noted.' },
      { role: 'user', content: 'Hello Ada, you are 36; Ada again.' },
    ]);
    expect(renderPrompt(record, { name: 'x', age: true, language: 'y' })[2].content).toBe(
      'Hello x, you are true; x again.',
    );
  });

  it('takes values literally: replacement patterns and placeholders in them are text', () => {
    const [, , user] = renderPrompt(record, { name: "$' $& {{age}}", age: '$1', language: 'y' });
    expect(user.content).toBe("Hello $' $& {{age}}, you are $1; $' $& {{age}} again.");
  });

  it('refuses a variable named by the template but not given, or given but not named', () => {
    expect(() => renderPrompt(record, { name: 'x' })).toThrow("prompt 'greet' needs variables: age, language");
    expect(() => renderPrompt(record, { name: 'x', age: 1, language: 'y', toString: 'z' })).toThrow(
      "prompt 'greet' has no variables: toString",
    );
  });
});
