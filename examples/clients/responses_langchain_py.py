"""Stock langchain-openai ChatOpenAI(use_responses_api=True) against the platform, only base_url changed."""
import json

from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from harness import (API_KEY, BASE_URL, MODEL, QUESTION, STRUCTURED_PROMPT, Weather, check_weather, finish,
                     get_weather, langchain_loop, print_client, step)

print_client("langchain-openai", "langchain-core", "openai")


def chat(**options):
    return ChatOpenAI(model=MODEL, base_url=BASE_URL, api_key=API_KEY, max_retries=0, use_responses_api=True, **options)


llm = chat()
weather_tool = tool(get_weather)


def agent_loop(model=llm, stream=False):
    return langchain_loop(model.bind_tools([weather_tool]), [HumanMessage(QUESTION)], weather_tool, stream)


def plain():
    msg = llm.invoke("Hello!")
    if not msg.text:
        raise AssertionError(f"empty: {msg!r}")
    return f"{json.dumps(msg.text)} (response id {msg.response_metadata.get('id')})"


def structured(**kwargs):
    value = llm.with_structured_output(Weather, **kwargs).invoke(STRUCTURED_PROMPT)
    return check_weather(value["parsed"] if kwargs.get("include_raw") else value)


def structured_streamed():
    *_, last = llm.with_structured_output(Weather).stream(STRUCTURED_PROMPT)
    return check_weather(last)


def previous_response_id():
    rid = llm.invoke("My name is Ada.").response_metadata.get("id")
    second = llm.invoke("What is my name?", previous_response_id=rid)
    if not second.text:
        raise AssertionError("empty answer")
    return f"{json.dumps(second.text)} (after {rid})"


def multi_turn():
    messages = [HumanMessage("My name is Ada.")]
    messages.append(llm.invoke(messages))
    messages.append(HumanMessage("What is my name?"))
    return json.dumps(llm.invoke(messages).text)


step("plain (invoke)", plain)
step("agent loop (bind_tools + invoke + ToolMessage)", agent_loop)
step("agent loop streamed (bind_tools + stream)", lambda: agent_loop(stream=True))
step("agent loop (use_previous_response_id=True)", lambda: agent_loop(chat(use_previous_response_id=True)))
step("agent loop (output_version='responses/v1')", lambda: agent_loop(chat(output_version="responses/v1")))
step("structured output (with_structured_output, default method)", structured)
step(
    "structured output (with_structured_output method=json_schema, include_raw)",
    lambda: structured(method="json_schema", include_raw=True),
)
step(
    "structured output (with_structured_output method=function_calling)",
    lambda: structured(method="function_calling"),
)
step("structured output streamed (with_structured_output.stream)", structured_streamed)
step("previous_response_id continuation (invoke previous_response_id=...)", previous_response_id)
step("multi-turn (AIMessage fed back)", multi_turn)
finish()
