"""Stock langchain-openai (ChatOpenAI, OpenAIEmbeddings) against the platform, only base_url changed."""
import json

from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from harness import (API_KEY, BASE_URL, EMBEDDING_MODEL, MODEL, QUESTION, STRUCTURED_PROMPT, Weather, check_weather,
                     finish, get_weather, langchain_loop, print_client, step)

print_client("langchain-openai", "langchain-core")
llm = ChatOpenAI(model=MODEL, base_url=BASE_URL, api_key=API_KEY, max_retries=0)
weather_tool = tool(get_weather)


def agent_loop(stream=False):
    return langchain_loop(llm.bind_tools([weather_tool]), [HumanMessage(QUESTION)], weather_tool, stream)


def structured(**kwargs):
    return check_weather(llm.with_structured_output(Weather, **kwargs).invoke(STRUCTURED_PROMPT))


def embed_query(**kwargs):
    embeddings = OpenAIEmbeddings(model=EMBEDDING_MODEL, base_url=BASE_URL, api_key=API_KEY, max_retries=0, **kwargs)
    v = embeddings.embed_query(QUESTION)
    if not v or not isinstance(v[0], float):
        raise AssertionError(f"not a vector: {v!r}")
    return f"{len(v)} dimensions"


step("plain chat", lambda: json.dumps(llm.invoke("Hello!").content))
step("agent loop (bind_tools + invoke)", agent_loop)
step("agent loop streamed (bind_tools + stream, chunks added)", lambda: agent_loop(stream=True))
step("structured output (with_structured_output, default method)", structured)
step(
    "structured output (with_structured_output, method=function_calling)",
    lambda: structured(method="function_calling"),
)
step("embeddings (OpenAIEmbeddings.embed_query, token-id arrays)", embed_query)
step(
    "embeddings (OpenAIEmbeddings.embed_query, check_embedding_ctx_length=False: strings)",
    lambda: embed_query(check_embedding_ctx_length=False),
)
finish()
