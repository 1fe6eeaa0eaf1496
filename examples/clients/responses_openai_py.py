"""Stock `openai` (Python) Responses API against the platform, only base_url changed."""
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
        traceback.print_exc(limit=4, file=sys.stdout)
        body = getattr(error, "body", None)
        if body is not None:
            print(f"     body: {json.dumps(body)}")


TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
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


state = {}


def plain():
    r = client.responses.create(model=MODEL, input="Hello!", instructions="Be brief.")
    if not r.output_text:
        raise AssertionError(f"no output_text: {r}")
    state["plain_id"] = r.id
    return json.dumps(r.output_text)


def agent_loop():
    items = [{"role": "user", "content": QUESTION}]
    calls = 0
    for _ in range(5):
        r = client.responses.create(model=MODEL, input=items, tools=TOOLS)
        fn_calls = [item for item in r.output if item.type == "function_call"]
        if not fn_calls:
            if calls == 0:
                raise AssertionError(f"no tool call; answered {r.output_text!r}")
            if not r.output_text:
                raise AssertionError("empty final answer")
            return f"{calls} tool call(s), final: {json.dumps(r.output_text)}"
        # The documented pattern: append the output items as they came (pydantic models, dumped by the client).
        items += r.output
        for call in fn_calls:
            calls += 1
            print(f"     tool call {call.name}({call.arguments})")
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": call.call_id,
                    "output": json.dumps(get_weather(**json.loads(call.arguments))),
                }
            )
    raise AssertionError("no final answer after 5 turns")


def agent_loop_previous():
    first = client.responses.create(model=MODEL, input=QUESTION, tools=TOOLS)
    call = next((item for item in first.output if item.type == "function_call"), None)
    if call is None:
        raise AssertionError(f"no tool call; answered {first.output_text!r}")
    print(f"     tool call {call.name}({call.arguments})")
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        tools=TOOLS,
        input=[
            {
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": json.dumps(get_weather(**json.loads(call.arguments))),
            }
        ],
    )
    if not second.output_text:
        raise AssertionError("empty final answer")
    return f"final: {json.dumps(second.output_text)}"


def agent_loop_streamed_raw():
    items = [{"role": "user", "content": QUESTION}]
    calls = 0
    seen = []
    for _ in range(5):
        stream = client.responses.create(model=MODEL, input=items, tools=TOOLS, stream=True)
        final = None
        text = ""
        for event in stream:
            if event.type not in seen:
                seen.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.completed":
                final = event.response
        if final is None:
            raise AssertionError("no response.completed")
        fn_calls = [item for item in final.output if item.type == "function_call"]
        if not fn_calls:
            if calls == 0:
                raise AssertionError(f"no tool call; answered {text!r}")
            if not text:
                raise AssertionError("empty final answer")
            return f"{calls} tool call(s), final: {json.dumps(text)}; events: {','.join(seen)}"
        items += final.output
        for call in fn_calls:
            calls += 1
            print(f"     tool call {call.name}({call.arguments})")
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": call.call_id,
                    "output": json.dumps(get_weather(**json.loads(call.arguments))),
                }
            )
    raise AssertionError("no final answer after 5 turns")


def agent_loop_stream_helper():
    items = [{"role": "user", "content": QUESTION}]
    with client.responses.stream(model=MODEL, input=items, tools=TOOLS) as stream:
        arg_deltas = sum(1 for event in stream if event.type == "response.function_call_arguments.delta")
        first = stream.get_final_response()
    call = next((item for item in first.output if item.type == "function_call"), None)
    if call is None:
        raise AssertionError(f"no tool call; answered {first.output_text!r}")
    print(f"     tool call {call.name}({call.arguments}) ({arg_deltas} argument deltas)")
    items += first.output
    items.append(
        {
            "type": "function_call_output",
            "call_id": call.call_id,
            "output": json.dumps(get_weather(**json.loads(call.arguments))),
        }
    )
    with client.responses.stream(model=MODEL, input=items, tools=TOOLS) as stream:
        text_deltas = sum(1 for event in stream if event.type == "response.output_text.delta")
        final = stream.get_final_response()
    if not final.output_text:
        raise AssertionError("empty final answer")
    return f"final: {json.dumps(final.output_text)} ({text_deltas} text deltas)"


def structured_parse():
    r = client.responses.parse(model=MODEL, input=STRUCTURED_PROMPT, text_format=Weather)
    return check_weather(r.output_parsed)


def structured_stream():
    with client.responses.stream(model=MODEL, input=STRUCTURED_PROMPT, text_format=Weather) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    return check_weather(final.output_parsed)


def previous_plain():
    first = client.responses.create(model=MODEL, input="My name is Ada.")
    second = client.responses.create(model=MODEL, previous_response_id=first.id, input="What is my name?")
    if not second.output_text:
        raise AssertionError("empty answer")
    return json.dumps(second.output_text)


def retrieve():
    r = client.responses.retrieve(state["plain_id"])
    if r.id != state["plain_id"] or not r.output_text:
        raise AssertionError(f"bad retrieve: {r}")
    return f"{r.id} {json.dumps(r.output_text)}"


def input_items():
    page = client.responses.input_items.list(state["plain_id"])
    print(f"     first page: has_more={page.has_more!r} first_id={getattr(page, 'first_id', None)!r} "
          f"last_id={getattr(page, 'last_id', None)!r} items={len(page.data)}")
    items = []
    # Auto-pagination as documented (for item in ...list(id)), capped: the pager asks again with after=<last id>
    # for as long as has_more is not False.
    for item in client.responses.input_items.list(state["plain_id"]):
        items.append(item)
        if len(items) > 10:
            raise AssertionError(
                f"auto-pagination does not end: {len(items)} items so far for a 1-item input "
                f"(has_more={page.has_more!r}; the page after=<last id> returns the same item again)"
            )
    if len(items) != 1 or items[0].type != "message":
        raise AssertionError(f"items: {items}")
    return repr(items[0])


def delete():
    d = client.responses.delete(state["plain_id"])
    try:
        client.responses.retrieve(state["plain_id"])
    except openai.NotFoundError:
        return f"delete -> {d!r}; retrieve -> 404"
    raise AssertionError("retrieve after delete succeeded")


def multi_turn():
    items = [{"role": "user", "content": "My name is Ada."}]
    first = client.responses.create(model=MODEL, input=items)
    items += first.output
    items.append({"role": "user", "content": "What is my name?"})
    return json.dumps(client.responses.create(model=MODEL, input=items).output_text)


step("plain (responses.create, output_text)", plain)
step("agent loop (input items, function_call -> function_call_output)", agent_loop)
step("agent loop (previous_response_id, only the tool output sent)", agent_loop_previous)
step("agent loop streamed (create stream=True, raw events)", agent_loop_streamed_raw)
step("agent loop streamed (responses.stream helper + get_final_response)", agent_loop_stream_helper)
step("structured output (responses.parse text_format=pydantic)", structured_parse)
step("structured output streamed (responses.stream text_format=pydantic)", structured_stream)
step("previous_response_id continuation (plain)", previous_plain)
step("multi-turn (output items fed back with a new user message)", multi_turn)
step("responses.retrieve", retrieve)
step("responses.input_items.list", input_items)
step("responses.delete, then retrieve is 404", delete)

print(f"{failed} step(s) FAILED" if failed else "all steps PASSED")
sys.exit(1 if failed else 0)
