"""Stock `openai` (Python) against the platform, only base_url changed."""
import json

from openai import OpenAI
from openai.types.chat import ChatCompletionMessage

from harness import (API_KEY, BASE_URL, EMBEDDING_MODEL, MODEL, QUESTION, STRUCTURED_PROMPT, WEATHER_PARAMETERS,
                     WEATHER_TOOL, Weather, check_weather, finish, print_client, run_tool, step, tool_loop)

print_client("openai")
client = OpenAI(base_url=BASE_URL, api_key=API_KEY, max_retries=0)
TOOLS = [{"type": "function", "function": {**WEATHER_TOOL, "parameters": WEATHER_PARAMETERS}}]


def plain():
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello!"}])
    return json.dumps(r.choices[0].message.content)


def agent_loop(ask):
    """ask(messages) -> the assistant's message; its tool calls answered with role "tool" messages."""
    messages = [{"role": "user", "content": QUESTION}]

    def turn():
        message = ask(messages)
        messages.append(message.model_dump(exclude_none=True))
        calls = message.tool_calls or []
        for call in calls:
            content = run_tool(call.function.name, call.function.arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
        return len(calls), message.content

    return tool_loop(turn)


def created(messages):
    return client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS).choices[0].message


def streamed(messages):
    """stream=True, the content and tool-call deltas added up into the message."""
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, tools=TOOLS, stream=True, stream_options={"include_usage": True}
    )
    content = ""
    calls: dict[int, dict] = {}
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for d in delta.tool_calls or []:
            call = calls.setdefault(d.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
            call["id"] = d.id or call["id"]
            if d.function:
                call["function"]["name"] += d.function.name or ""
                call["function"]["arguments"] += d.function.arguments or ""
    message = {"role": "assistant", "content": content or None, "tool_calls": [calls[i] for i in sorted(calls)] or None}
    return ChatCompletionMessage.model_validate(message)


def stream_helper(messages):
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=TOOLS) as stream:
        for _ in stream:
            pass
        return stream.get_final_completion().choices[0].message


def parsed(parse):
    r = parse(model=MODEL, messages=[{"role": "user", "content": STRUCTURED_PROMPT}], response_format=Weather)
    return check_weather(r.choices[0].message.parsed)


def embeddings():
    r = client.embeddings.create(model=EMBEDDING_MODEL, input=QUESTION)
    return f"{len(r.data[0].embedding)} dimensions"


step("plain chat", plain)
step("agent loop (chat.completions.create + tools)", lambda: agent_loop(created))
step("structured output (beta.chat.completions.parse, pydantic)", lambda: parsed(client.beta.chat.completions.parse))
step("structured output (chat.completions.parse, pydantic)", lambda: parsed(client.chat.completions.parse))
step("agent loop streamed (stream=True, tool-call deltas accumulated)", lambda: agent_loop(streamed))
step(
    "agent loop streamed (chat.completions.stream helper + get_final_completion)", lambda: agent_loop(stream_helper)
)
step("embeddings (embeddings.create)", embeddings)
finish()
