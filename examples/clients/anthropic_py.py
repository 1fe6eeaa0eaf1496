"""Stock `anthropic` (Python) against the platform's Messages API, only base_url changed."""
import os
import sys

import anthropic

client = anthropic.Anthropic(base_url=os.environ["BASE_URL"].removesuffix("/v1"), api_key=os.environ["API_KEY"], max_retries=0)
MODEL = os.environ.get("MODEL", "nova-micro")
print(f"client: anthropic=={anthropic.__version__}")
TOOLS = [
    {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
failed = 0


def step(name, fn):
    global failed
    try:
        print(f"PASS {name}: {fn()}")
    except Exception as error:  # noqa: BLE001
        failed += 1
        print(f"FAIL {name}: {error!r}")


def plain():
    message = client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello!"}])
    return message.content[0].text


def agent_loop(create):
    first = create(QUESTION)
    use = next(block for block in first.content if block.type == "tool_use")
    result = {"type": "tool_result", "tool_use_id": use.id, "content": '{"temp_c": 21}'}
    final = create([*QUESTION, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}])
    return f"{use.name}({use.input}) -> {final.content[0].text!r}"


def buffered(messages):
    return client.messages.create(model=MODEL, max_tokens=64, tools=TOOLS, messages=messages)


def streamed(messages):
    with client.messages.stream(model=MODEL, max_tokens=64, tools=TOOLS, messages=messages) as stream:
        return stream.get_final_message()


step("plain (messages.create)", plain)
step("agent loop (tool_use -> tool_result)", lambda: agent_loop(buffered))
step("agent loop streamed (messages.stream)", lambda: agent_loop(streamed))
step("count_tokens", lambda: client.messages.count_tokens(model=MODEL, messages=QUESTION).input_tokens)
print(f"{failed} step(s) FAILED" if failed else "all steps PASSED")
sys.exit(1 if failed else 0)
