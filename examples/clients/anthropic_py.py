"""Stock `anthropic` (Python) against the platform's Messages API, only base_url changed."""
import anthropic

from harness import (API_KEY, BASE_URL, MODEL, QUESTION, WEATHER_PARAMETERS, WEATHER_TOOL, finish, get_weather,
                     print_client, step)

print_client("anthropic")
client = anthropic.Anthropic(base_url=BASE_URL.removesuffix("/v1"), api_key=API_KEY, max_retries=0)
TOOLS = [{**WEATHER_TOOL, "input_schema": WEATHER_PARAMETERS}]
ASK = [{"role": "user", "content": QUESTION}]


def plain():
    message = client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello!"}])
    return message.content[0].text


def agent_loop(create):
    first = create(ASK)
    use = next(block for block in first.content if block.type == "tool_use")
    result = {"type": "tool_result", "tool_use_id": use.id, "content": get_weather(**use.input)}
    final = create([*ASK, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}])
    return f"{use.name}({use.input}) -> {final.content[0].text!r}"


def buffered(messages):
    return client.messages.create(model=MODEL, max_tokens=64, tools=TOOLS, messages=messages)


def streamed(messages):
    with client.messages.stream(model=MODEL, max_tokens=64, tools=TOOLS, messages=messages) as stream:
        return stream.get_final_message()


step("plain (messages.create)", plain)
step("agent loop (tool_use -> tool_result)", lambda: agent_loop(buffered))
step("agent loop streamed (messages.stream)", lambda: agent_loop(streamed))
step("count_tokens", lambda: client.messages.count_tokens(model=MODEL, messages=ASK).input_tokens)
finish()
