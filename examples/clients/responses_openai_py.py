"""Stock `openai` (Python) Responses API against the platform, only base_url changed."""
import json
from collections import Counter

import openai
from openai import OpenAI

from harness import (API_KEY, BASE_URL, MODEL, QUESTION, STRUCTURED_PROMPT, WEATHER_PARAMETERS, WEATHER_TOOL, Weather,
                     check_weather, finish, print_client, run_tool, step, tool_loop)

print_client("openai")
client = OpenAI(base_url=BASE_URL, api_key=API_KEY, max_retries=0)
PARAMETERS = {**WEATHER_PARAMETERS, "additionalProperties": False}
TOOLS = [{"type": "function", **WEATHER_TOOL, "parameters": PARAMETERS, "strict": True}]
state = {}


def plain():
    r = client.responses.create(model=MODEL, input="Hello!", instructions="Be brief.")
    if not r.output_text:
        raise AssertionError(f"no output_text: {r}")
    state["plain_id"] = r.id
    return json.dumps(r.output_text)


def answered(response):
    """The function_call_output items answering a response's function calls."""
    calls = [item for item in response.output if item.type == "function_call"]
    return [
        {"type": "function_call_output", "call_id": call.call_id, "output": run_tool(call.name, call.arguments)}
        for call in calls
    ]


def agent_loop(respond):
    """respond(items) -> a response; its output items fed back as they came, then the tool outputs."""
    items = [{"role": "user", "content": QUESTION}]

    def turn():
        response = respond(items)
        outputs = answered(response)
        items.extend([*response.output, *outputs])
        return len(outputs), response.output_text

    return tool_loop(turn)


def created(items):
    return client.responses.create(model=MODEL, input=items, tools=TOOLS)


def streamed_raw(items, events):
    """create(stream=True), the event types counted in `events`; the text deltas must add up to output_text."""
    final, text = None, ""
    for event in client.responses.create(model=MODEL, input=items, tools=TOOLS, stream=True):
        events[event.type] += 1
        if event.type == "response.output_text.delta":
            text += event.delta
        if event.type == "response.completed":
            final = event.response
    if final is None:
        raise AssertionError("no response.completed")
    if text != final.output_text:
        raise AssertionError(f"text deltas {text!r}, output_text {final.output_text!r}")
    return final


def stream_helper(items, events):
    """responses.stream and get_final_response, the event types counted in `events`."""
    with client.responses.stream(model=MODEL, input=items, tools=TOOLS) as stream:
        events.update(event.type for event in stream)
        return stream.get_final_response()


def agent_loop_previous():
    """Each turn sends only what is new (the question, then the tool outputs) and the previous_response_id."""
    request = {"input": QUESTION}

    def turn():
        response = client.responses.create(model=MODEL, tools=TOOLS, **request)
        outputs = answered(response)
        request.update(input=outputs, previous_response_id=response.id)
        return len(outputs), response.output_text

    return tool_loop(turn)


def agent_loop_streamed_raw():
    events = Counter()
    return f"{agent_loop(lambda items: streamed_raw(items, events))}; events: {','.join(events)}"


def agent_loop_stream_helper():
    events = Counter()
    result = agent_loop(lambda items: stream_helper(items, events))
    deltas = events["response.function_call_arguments.delta"], events["response.output_text.delta"]
    return f"{result} ({deltas[0]} argument deltas, {deltas[1]} text deltas)"


def structured_parse():
    r = client.responses.parse(model=MODEL, input=STRUCTURED_PROMPT, text_format=Weather)
    return check_weather(r.output_parsed)


def structured_stream():
    with client.responses.stream(model=MODEL, input=STRUCTURED_PROMPT, text_format=Weather) as stream:
        for _ in stream:
            pass
        return check_weather(stream.get_final_response().output_parsed)


def previous_plain():
    first = client.responses.create(model=MODEL, input="My name is Ada.")
    second = client.responses.create(model=MODEL, previous_response_id=first.id, input="What is my name?")
    if not second.output_text:
        raise AssertionError("empty answer")
    return json.dumps(second.output_text)


def multi_turn():
    items = [{"role": "user", "content": "My name is Ada."}]
    first = client.responses.create(model=MODEL, input=items)
    items += [*first.output, {"role": "user", "content": "What is my name?"}]
    return json.dumps(client.responses.create(model=MODEL, input=items).output_text)


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


step("plain (responses.create, output_text)", plain)
step("agent loop (input items, function_call -> function_call_output)", lambda: agent_loop(created))
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
finish()
