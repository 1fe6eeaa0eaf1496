"""Stock langchain-openai (ChatOpenAI, OpenAIEmbeddings) against the platform, only base_url changed."""
import json
import os
import sys
import traceback
from importlib.metadata import version

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel

print(f"client: langchain-openai=={version('langchain-openai')} langchain-core=={version('langchain-core')}")
MODEL = os.environ.get("MODEL", "nova-micro")
llm = ChatOpenAI(model=MODEL, base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"], max_retries=0)

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


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city"""
    return json.dumps({"temp_c": 21, "city": city})


QUESTION = "What is the weather in Paris?"
STRUCTURED_PROMPT = "The weather in Paris is 21 degrees. Reply with the city and its temperature."


class Weather(BaseModel):
    city: str
    temp_c: float


def check_weather(value) -> str:
    if not isinstance(value, Weather):
        raise AssertionError(f"not a Weather: {value!r}")
    return value.model_dump_json()


def agent_loop(call):
    with_tools = llm.bind_tools([get_weather])
    messages = [HumanMessage(QUESTION)]
    calls = 0
    for _ in range(5):
        ai = call(with_tools, messages)
        messages.append(ai)
        if getattr(ai, "invalid_tool_calls", None):
            raise AssertionError(f"invalid tool calls: {ai.invalid_tool_calls}")
        if not ai.tool_calls:
            if calls == 0:
                raise AssertionError(f"no tool call; answered {ai.content!r}")
            if not ai.content:
                raise AssertionError("empty final answer")
            return f"{calls} tool call(s), final: {json.dumps(ai.content)}"
        for tc in ai.tool_calls:
            calls += 1
            print(f"     tool call {tc['name']}({json.dumps(tc['args'])}) id={tc['id']}")
            messages.append(ToolMessage(content=get_weather.invoke(tc["args"]), tool_call_id=tc["id"]))
    raise AssertionError("no final answer after 5 turns")


def streamed(model, messages):
    full = None
    for chunk in model.stream(messages):
        full = chunk if full is None else full + chunk
    if full is None:
        raise AssertionError("no chunks")
    return full


def embed_query():
    embeddings = OpenAIEmbeddings(
        model=os.environ.get("EMBEDDING_MODEL", "titan-embed-text-v2"),
        base_url=os.environ["BASE_URL"],
        api_key=os.environ["API_KEY"],
        max_retries=0,
    )
    v = embeddings.embed_query(QUESTION)
    if not v or not isinstance(v[0], float):
        raise AssertionError(f"not a vector: {v!r}")
    return f"{len(v)} dimensions"


def embed_query_plain_strings():
    embeddings = OpenAIEmbeddings(
        model=os.environ.get("EMBEDDING_MODEL", "titan-embed-text-v2"),
        base_url=os.environ["BASE_URL"],
        api_key=os.environ["API_KEY"],
        max_retries=0,
        check_embedding_ctx_length=False,
    )
    return f"{len(embeddings.embed_query(QUESTION))} dimensions"


step("plain chat", lambda: json.dumps(llm.invoke("Hello!").content))
step("agent loop (bind_tools + invoke)", lambda: agent_loop(lambda m, msgs: m.invoke(msgs)))
step("agent loop streamed (bind_tools + stream, chunks added)", lambda: agent_loop(streamed))
step(
    "structured output (with_structured_output, default method)",
    lambda: check_weather(llm.with_structured_output(Weather).invoke(STRUCTURED_PROMPT)),
)
step(
    "structured output (with_structured_output, method=function_calling)",
    lambda: check_weather(llm.with_structured_output(Weather, method="function_calling").invoke(STRUCTURED_PROMPT)),
)
step("embeddings (OpenAIEmbeddings.embed_query, token-id arrays)", embed_query)
step("embeddings (OpenAIEmbeddings.embed_query, check_embedding_ctx_length=False: strings)", embed_query_plain_strings)

print(f"{failed} step(s) FAILED" if failed else "all steps PASSED")
sys.exit(1 if failed else 0)
