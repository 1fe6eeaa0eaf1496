"""Stock `openai` (Python) against the platform, only base_url changed."""
import json
import os
import sys
import traceback

import openai
from openai import OpenAI
from pydantic import BaseModel

client = OpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"], max_retries=0)
MODEL = os.environ.get("MODEL", "nova-micro")
print(f"client: openai=={openai.__version__}")

failed = 0


def step(name, fn):
    global failed
    try:
        detail = fn()
        print(f"PASS {name}" + (f": {detail}" if detail else ""))
    except Exception as error:  # noqa: BLE001
        failed += 1
        print(f"FAIL {name}: {error!r}")
        traceback.print_exc(limit=3, file=sys.stdout)
        body = getattr(error, "body", None)
        if body is not None:
            print(f"     body: {json.dumps(body)}")


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
QUESTION = "What is the weather in Paris?"
STRUCTURED_PROMPT = "The weather in Paris is 21 degrees. Reply with the city and its temperature."


def get_weather(city: str) -> dict:
    return {"temp_c": 21, "city": city}


class Weather(BaseModel):
    city: str
    temp_c: float


def check_weather(value) -> str:
    if not isinstance(value, Weather):
        raise AssertionError(f"not a Weather: {value!r}")
    return value.model_dump_json()


def plain():
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello!"}])
    return json.dumps(r.choices[0].message.content)


def agent_loop():
    messages = [{"role": "user", "content": QUESTION}]
    calls = 0
    for _ in range(5):
        r = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        message = r.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            if calls == 0:
                raise AssertionError(f"no tool call; answered {message.content!r}")
            if not message.content:
                raise AssertionError("empty final answer")
            return f"{calls} tool call(s), final: {json.dumps(message.content)}"
        for call in message.tool_calls:
            calls += 1
            print(f"     tool call {call.function.name}({call.function.arguments})")
            result = get_weather(**json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    raise AssertionError("no final answer after 5 turns")


def parse_beta():
    r = client.beta.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": STRUCTURED_PROMPT}], response_format=Weather
    )
    return check_weather(r.choices[0].message.parsed)


def parse_ga():
    r = client.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": STRUCTURED_PROMPT}], response_format=Weather
    )
    return check_weather(r.choices[0].message.parsed)


def agent_loop_streamed():
    messages = [{"role": "user", "content": QUESTION}]
    calls = 0
    for _ in range(5):
        stream = client.chat.completions.create(
            model=MODEL, messages=messages, tools=TOOLS, stream=True, stream_options={"include_usage": True}
        )
        content = ""
        tool_calls: dict[int, dict] = {}
        for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            if delta.content:
                content += delta.content
            for d in delta.tool_calls or []:
                t = tool_calls.setdefault(
                    d.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
                )
                if d.id:
                    t["id"] = d.id
                if d.function and d.function.name:
                    t["function"]["name"] += d.function.name
                if d.function and d.function.arguments:
                    t["function"]["arguments"] += d.function.arguments
        if not tool_calls:
            if calls == 0:
                raise AssertionError(f"no tool call; answered {content!r}")
            if not content:
                raise AssertionError("empty final answer")
            return f"{calls} tool call(s), final: {json.dumps(content)}"
        ordered = [tool_calls[i] for i in sorted(tool_calls)]
        messages.append({"role": "assistant", "content": content or None, "tool_calls": ordered})
        for call in ordered:
            calls += 1
            print(f"     tool call {call['function']['name']}({call['function']['arguments']})")
            result = get_weather(**json.loads(call["function"]["arguments"]))
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)})
    raise AssertionError("no final answer after 5 turns")


def agent_loop_stream_helper():
    messages = [{"role": "user", "content": QUESTION}]
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=TOOLS) as stream:
        for _ in stream:
            pass
        first = stream.get_final_completion()
    message = first.choices[0].message
    if not message.tool_calls:
        raise AssertionError(f"no tool call; answered {message.content!r}")
    messages.append(message.model_dump(exclude_none=True, exclude={"parsed"}))
    for call in message.tool_calls:
        result = get_weather(**json.loads(call.function.arguments))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=TOOLS) as stream:
        for _ in stream:
            pass
        second = stream.get_final_completion()
    text = second.choices[0].message.content
    if not text:
        raise AssertionError("empty final answer")
    return f"final: {json.dumps(text)}"


def embeddings():
    r = client.embeddings.create(model=os.environ.get("EMBEDDING_MODEL", "titan-embed-text-v2"), input=QUESTION)
    return f"{len(r.data[0].embedding)} dimensions"


step("plain chat", plain)
step("agent loop (chat.completions.create + tools)", agent_loop)
step("structured output (beta.chat.completions.parse, pydantic)", parse_beta)
step("structured output (chat.completions.parse, pydantic)", parse_ga)
step("agent loop streamed (stream=True, tool-call deltas accumulated)", agent_loop_streamed)
step("agent loop streamed (chat.completions.stream helper + get_final_completion)", agent_loop_stream_helper)
step("embeddings (embeddings.create)", embeddings)

print(f"{failed} step(s) FAILED" if failed else "all steps PASSED")
sys.exit(1 if failed else 0)
