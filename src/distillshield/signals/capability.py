"""Capability targeting: which capability a request exercises.

Why it matters. The reported campaigns did not look like any one bad prompt; they looked like
*volume concentrated on a few capabilities*: reasoning and math with verifiable answers,
agentic coding and tool orchestration, computer use, rubric grading that turns the model into
a reward model. One request's category says nothing; an account (or a cluster of accounts)
whose traffic is 95% ``math_reasoning`` + ``grading`` with near-zero ``general_chat`` is the
shape of a curriculum, not of a person. This module supplies the per-request category;
aggregation and baselines happen downstream.

Categories (``CATEGORIES``):

* ``agentic_tool_use`` — tools are offered with the request, or the prompt carries a
  tool-call transcript (tool/function results, ReAct "Action:/Observation:", computer-use
  actions such as clicks and screenshots), or the system prompt sets up an agent with tools.
* ``grading`` — rubric / reward-model / LLM-as-judge prompts: score or compare responses.
* ``coding`` — writing, reading, fixing or explaining code; programming tools and stacks.
* ``rewrite_translation`` — transform text supplied in the prompt: translate, rewrite,
  paraphrase, proofread, summarise, extract into a structure.
* ``math_reasoning`` — math problems, word problems, proofs, logic puzzles.
* ``creative`` — stories, poems, songs, role-play, and composing prose such as essays,
  blog posts, letters and e-mails.
* ``general_chat`` — everything else: knowledge questions, advice, recommendations.

How. Each category has a *strong* and a *weak* RE2 pattern, run column-wise with
``pyarrow.compute.match_substring_regex`` on the lower-cased prompt. A strong hit decides,
in priority order agentic > grading > coding > rewrite > math > creative (so "write a Python
function that solves a quadratic" is coding, "translate this SQL to pandas" is coding,
"grade this code" is grading); without any strong hit the first weak hit decides; without
either, the system prompt is consulted, and then ``general_chat``. Categories are evaluated
lazily: a row decided by a strong hit is not scanned by lower-priority patterns, which is
what keeps the classifier above 300k prompts/s.

Tools and a judge/agent system prompt override the prompt text: a coding agent whose every
request offers ``read_file`` / ``run_terminal_cmd`` is ``agentic_tool_use`` even when the
user message is "fix the failing test"; a judge system prompt makes the prompt the thing
being graded. Quality on real data is in docs/signals-cot-capability.md.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "CATEGORIES",
    "PRIORITY",
    "ReferenceItem",
    "category_map",
    "classify",
    "legit_prompts",
    "reference_items",
]

MATH = "math_reasoning"
CODING = "coding"
AGENTIC = "agentic_tool_use"
GRADING = "grading"
REWRITE = "rewrite_translation"
CREATIVE = "creative"
CHAT = "general_chat"
#: Label vocabulary of the ``capability`` column.
CATEGORIES: tuple[str, ...] = (MATH, CODING, AGENTIC, GRADING, REWRITE, CREATIVE, CHAT)
#: Which category wins when several have evidence of the same strength.
PRIORITY: tuple[str, ...] = (AGENTIC, GRADING, CODING, REWRITE, MATH, CREATIVE)


def _alt(*parts: str) -> str:
    return "(?:" + "|".join(parts) + ")"


# All patterns are matched against lower-cased text. RE2: \b and \w are ASCII-only, so
# non-English phrases are plain literals (these languages need no word boundaries for them).

_TRANSCRIPT = _alt(
    r"<\s*/?\s*(?:tool_result|tool_call|tool_use|function_results?|function_calls?|invoke|observation)\b",
    r"\"(?:tool_calls?|tool_call_id|tool_use_id|function_call)\"|\"role\"\s*:\s*\"(?:tool|function)\"",
    r"(?:^|\n)\s*(?:observation|action input|action|tool (?:output|result)|function (?:output|result))\s*:",
    r"\bfunction results?\b|\btool (?:results?|outputs?)\b|\[tool (?:output|result|call)",
    r"\b(?:left_click|right_click|double_click|mouse_move|left_click_drag|type_text|key_press|cursor_position"
    r"|xdotool|take_screenshot)\b|\bscreenshot\b[^.\n]*\b(?:click|scroll|type)|\bclick\s*\(\s*\d",
    r"you have access to (?:the following |these )?(?:tools|functions|apis)|available (?:tools|functions)\s*:"
    r"|use the (?:tools|functions) (?:provided|as needed|below|available)|(?:call|invoke) (?:the |a )?(?:tool"
    r"|function)s? (?:to|named|with)|function[- ]calling|tool[- ]use|tool calls?\b",
)
_AGENT_SYSTEM = _alt(
    _TRANSCRIPT,
    r"\b(?:coding|software engineering|autonomous|browser|computer[- ]use|web|research|ai) agent\b"
    r"|operat\w* (?:in|inside) (?:the user'?s )?(?:ide|terminal|editor|repository|browser)|\btools?\b[^.\n]*"
    r"\b(?:available|provided|at your disposal)",
)

_GRADING_STRONG = _alt(
    r"\b(?:act|serve|behave) as (?:an? |the )?(?:\w+ ){0,2}(?:judge|grader|evaluator|rater|reward model)",
    r"\bimpartial judge|\breward model|\brubric\b|\[\[(?:rating|a|b|c|tie)\]\]|\bfinal verdict\b",
    r"assistant a'?s? (?:answer|response|conversation)|\b(?:response|output|answer|completion"
    r"|assistant) [ab]\b"
    r"[^.\n]*\b(?:response|output|answer|completion|assistant) [ab]\b",
    r"\b(?:which|whichever) (?:of the (?:two|following) )?(?:responses?|answers?|outputs?|completions?|"
    r"assistants?|summar(?:y|ies)|translations?) (?:is|was) (?:better|more|preferred|best)",
    r"\b(?:evaluate|assess|judge|rate|score|grade|critique|review|compare) (?:the |this |each |these |the "
    r"following |my |both |two |an? )?(?:quality of (?:the |this |each )?)?(?:(?:model|ai|assistant|"
    r"chatbot|candidate|student|generated)'?s? )?(?:responses?|answers?|outputs?|completions?|generations?"
    r"|submissions?|essays?|summar(?:y|ies)|translations?|solutions?)\b",
    r"\b(?:score|rating|grade|mark) (?:from|between|of|on a scale of) (?:0|1)(?:\.0)? (?:to|and|-) (?:1|5|7"
    r"|10|100)"
    r"\b[^.\n]*\b(?:response|answer|output|completion|essay|solution|helpful|correct|accura)",
    r"\b(?:helpfulness|harmlessness|faithfulness|relevance|coherence|fluency)\b[^.\n]*\(\s*1\s*-\s*(?:5"
    r"|10)\s*\)",
    r"\bpreference (?:label|judg|data)|\bpairwise (?:comparison|preference)|\bllm[- ]as[- ]a[- ]judge",
    r"奖励模型|獎勵模型|评分|評分|打分|评判|評判|裁判|评估(?:下面|以下)?的?回答|判断下面的回答",
    r"оцени(?:те)? (?:ответ|качество|по шкале)|судь[яи]|модель вознаграждения",
    r"채점|평가해|보상 모델|심사위원",
    r"採点|評価して|報酬モデル|審査員",
    r"eval[úu]a (?:la|las|esta) respuesta|califica (?:la|esta)|juez imparcial|avalie a resposta|juiz",
    r"bewerte (?:die|diese) antwort|schiedsrichter|bewertungsraster",
    r"[ée]value la r[ée]ponse|note (?:la|cette) r[ée]ponse|juge impartial|grille d'[ée]valuation",
    r"قيّم الإجابة|قيم الإجابة|حكم محايد|نموذج المكافأة",
)
#: Keyword superset of :data:`_TRANSCRIPT` and :data:`_GRADING_STRONG` (plain literals, one cheap pass):
#: both are rare, and this gate keeps their detailed patterns off most rows. Tests check it
#: never hides a hit.
_RARE_GATE = _alt(
    r"tool|function|invoke|observation|action|click|screenshot|xdotool|mouse_move|key_press|type_text"
    r"|cursor_position|you have access",
    r"judge|grader|evaluat|rater|reward|rubric|\[\[|verdict|response [ab]|output [ab]|answer [ab]"
    r"|completion [ab]|assistant [ab]|better|more|preferred|best|assess|rate|score|grade|critique|review"
    r"|compare|rating|mark |helpfulness|harmlessness|faithfulness|relevance|coherence|fluency|preference"
    r"|pairwise|llm",
    r"奖励|獎勵|评分|評分|打分|评判|評判|裁判|评估|判断|оцени|суд|вознагражд|채점|평가|보상|심사|採点|評価"
    r"|報酬|審査"
    r"|eval|califica|juez|avali|juiz|bewert|schiedsricht|[ée]value|note |juge|grille|قيّم|قيم|حكم|المكافأة",
)
_GRADING_WEAK = _alt(
    r"\bon a scale (?:of|from) \d+ (?:to|-) \d+|\b(?:rate|score|grade) (?:it|this|them|each)\b"
    r"|\bis (?:the|this) (?:answer|response|solution) (?:correct|right|accurate)",
)

_LANG = (
    r"python|javascript|typescript|java|c\+\+|c#|c sharp|golang|kotlin|scala|php|ruby|perl|haskell|ocaml"
    r"|elixir"
    r"|erlang|clojure|lua|luau|dart|fortran|cobol|vb\.net|vba|powershell|bash|zsh|sql|t-sql|pl/sql|postgres"
    r"|mysql|sqlite|html|css|sass|jsx|tsx|react|vue|svelte|angular|django|flask|fastapi|rails|laravel"
    r"|node\.?js"
    r"|express\.js|next\.?js|numpy|pandas|pytorch|tensorflow|keras|scikit-learn|sklearn|jax|matplotlib"
    r"|seaborn"
    r"|plotly|streamlit|gradio|docker|kubernetes|terraform|ansible|nginx|apache|linux|ubuntu|regex|regexp"
    r"|graphql|solidity|verilog|vhdl|systemverilog|assembly|nasm|cuda|opencl|glsl|hlsl|matlab|octave"
    r"|swiftui|objective-c|unity|godot|roblox|gdscript|autolisp|excel formula|google sheets formula|latex"
    r"|jupyter|git|github|gitlab|npm|pip|conda|webpack|vite|tailwind|bootstrap|jquery|spark|pyspark|hadoop"
    r"|kafka|redis|mongodb|elasticsearch|aws lambda|s3 bucket|api|sdk|cli|ffmpeg|awk|sed|grep|jq|curl|cron"
    r"|ecmascript|vbs|vbscript|xaml|wpf|svg|selenium|playwright|promql|tidyverse|dplyr"
    r"|ggplot2?|excel vba|apps script|pyqt\d?|pyside\d?|tkinter|flutter|wordpress"
    r"|drupal|odoo|abap|arduino|raspberry pi|opengl|vulkan|webgl|three\.js|d3\.js|openai api"
    r"|langchain|llamaindex|hugging ?face"
)
#: Language names that are also ordinary words ("go", "rust", "c major"): only with a code noun.
_LANG_AMBIG = r"swift|rust|go|r|c|js|shiny|qt|metal|unity|spark|android|ios|electron|excel|sap"
_CODE_STRONG = _alt(
    r"```|~~~",
    r"\b[\w/.-]+\.(?:py|ipynb|js|mjs|ts|tsx|jsx|java|kt|cpp|cc|hpp|rs|go|rb|php|cs|swift|scala|sh|ps1|sql|vue"
    r"|toml|gradle|csproj)\b",
    r"(?:^|\n)\s*(?:(?:def|class|async def|fn|func|function|public|private|static|impl|struct|interface"
    r"|import"
    r"|package|const|let|var|select|insert into|create table|return) [a-z_*(\[{]|from [\w.]+ import |#include"
    r"|using namespace|#!/)",
    r"\b(?:def|function|fn|func) [a-z_][\w]*\s*\(|\bconsole\.log\(|\bprint(?:ln|f)?\(|\bstd::"
    r"|\breturn [^\n]*;"
    r"|=>\s*\{|\)\s*\{\s*\n|;\s*\n|</?(?:div|span|html|body|script|button|form)\b|\bself\.\w+|\bthis\.\w+",
    r"\b(?:in|using|with|for) (?:" + _LANG + r")(?:$|[^\w.+#-]|\.\s)|\b(?:" + _LANG + r") (?:code|script"
    r"|program"
    r"|function|class"
    r"|query|library|package|module|app|application|snippet|file|project|api|version|error|notebook)",
    r"\b(?:" + _LANG_AMBIG + r") (?:code|program|function|script|class|struct|trait|crate|module|package"
    r"|library|app|compiler|macro|closure|formula|project|snippet|implementation)s?\b|\bin (?:rust|swift"
    r"|js)\b",
    r"\b(?:python|javascript|typescript|golang|kotlin|php|pytorch|tensorflow|pandas|numpy|django"
    r"|react|node\.?js|sql|regex|docker|kubernetes|powershell|bash)\b|(?:^|[^\w])(?:c\+\+|c#)(?:$|[^\w+#])",
    r"\b(?:write|implement|code|program|create|build|generate|give me|show me|make|develop|fix|debug|refactor"
    r"|optimi[sz]e|convert|port|translate|rewrite)\b[^.?!\n]*\b(?:function|method|class|script|program|code"
    r"|query|regex|endpoint|module|component|unit tests?|test cases?|algorithm|api|cli|bot|plugin|extension"
    r"|dockerfile|makefile|shell command|one-liner|snippet|web ?app|website|app|kernel|shader|smart contract"
    r"|macro|testbench|fuzzer|exploit|schema|migration|sql|regular expression|framework|library|sdk)\b",
    r"\b(?:stack ?trace|traceback|segmentation fault|segfault|null ?pointer|syntaxerror|typeerror|valueerror"
    r"|nameerror|indexerror|keyerror|attributeerror|importerror|exception in thread|compil(?:e|er|ation) "
    r"|\b(?:java|javax|org|com|android)\.[a-z]+\.[a-z]|\bexpected a closure|\bborrow checker|\bnpm install"
    r"|\bpip install|\bgit (?:clone|commit|push|pull|rebase|merge)|\bdocker (?:run|build|compose)"
    r"error|runtime error|undefined reference|cannot find symbol|is not a function|npm err|exit code \d)",
    r"\b(?:time complexity|big[- ]o|linked list|binary (?:search )?tree|hash ?map|dynamic programming"
    r"|leetcode"
    r"|codebase|pull request|unit test|refactor|recursion|recursive function)\b",
    r"代码|程序|编程|函数|程式|函式|код(?:а|е|ом)?\b|программ|функци[юяи]|코드|프로그램|함수|コード"
    r"|プログラム|関数"
    r"|código|programa|función|funktion|programmier|fonction|programme|código|برمجة|الكود|دالة",
)
_CODE_WEAK = _alt(
    r"\b(?:" + _LANG + r"|json|yaml|xml|csv)\b|`[a-z_][\w.]*(?:\(\))?`|%>%|\b[a-z_]\w* <- ",
    r"\b(?:server|database|schema|endpoint|backend|frontend|deployment|repository|compile|debug|debugging"
    r"|boolean|algorithm|data structure|framework|dependency|command line|terminal command|shell script"
    r"|configuration file|config file|browser extension|programming|programmer|developer|coding|source code"
    r"|firmware|compiler|vscode|spreadsheet formula|dataframe|http|url|ssh|dns|tcp|api|array|subarray|excel"
    r"|code|codes|coded|function|functions"
    r"|spreadsheet|nix|nixpkgs|llvm|x86|x86-64|arm64|mutex|semaphore|socket|websocket|eintr|async|await"
    r"|multithreading|race condition|deadlock|cryptographic|hash function|hmac|sha-?256|aes|rsa|oauth|jwt"
    r"|cors"
    r"|tls|xss|csrf|sql injection|cve|exploit|fuzzer|fuzzing|reverse engineering|decompil\w*|codeql|mock"
    r"|unit tests?|integration tests?|ci/cd|devops|microservices?|saas backend|cloudformation|serverless"
    r"|scrape|scraper|scraping|crawler|userspace|kernel module|operating system|device drivers?"
    r"|windows service"
    r"|daemon|npcap|wireshark|packet capture|jetpack compose|composable)\b",
)

_REWRITE_STRONG = _alt(
    r"\btranslat(?:e|ion|ing)\b|\b(?:into|to|in) (?:english|chinese|mandarin|spanish|french|german|japanese"
    r"|korean|russian|portuguese|italian|arabic|hindi|dutch|swedish|polish|turkish|vietnamese|lojban)\b"
    r"[^.?!\n]*(?::|$)",
    r"\b(?:rewrite|re-write|rephrase|paraphrase|reword|proofread|copyedit|copy-edit|reformulate|restate"
    r"|revise|redraft|polish|tighten|shorten|condense|simplify) (?:this|the|it|that|my|these|following"
    r"|below|above|your|his|her|our|each|every)\b",
    r"\b(?:edit|correct|fix|improve|check) (?:the |this |my |any |these )?(?:following |below )?"
    r"(?:paragraph|sentence|text|essay|email|letter|passage|grammar|grammatical|spelling|typos?|punctuation"
    r"|wording|phrasing|flow)",
    r"\bsummari[sz](?:e|ing) (?:this|the|it|that|these|following|below|above|our|everything|my|his|her)"
    r"|\bsummary of (?:this|the following|the (?:text|article|passage|paper|document|email|conversation|"
    r"dialogue|story|chapter|book|transcript))|\btl;?dr\b|\bin (?:\d+|one|two|three|five) (?:bullet points"
    r"|sentences|words)\b[^?]*(?::|$)",
    r"\b(?:make|turn) (?:this|it|the (?:text|paragraph|sentence|email|message)) (?:more|less|into)",
    r"\bchange the tone\b|\bmore formal\b|\bless formal\b|\bin plain (?:english|language)\b|\bformulera om\b",
    r"\bextract (?:the following|all|the|every|each|any)\b|\bidentify the (?:named entities|countries"
    r"|people|dates)|\b(?:from|in) the (?:following|given|presented|provided|above|below) (?:text|texts"
    r"|passage|article|paragraph|sentences|records|data|reviews|document)",
    r"翻译|翻譯|译成|譯成|改写|改寫|润色|潤色|重写|总结一下|總結一下|总结这|摘要|переведи|перевод|перепиши"
    r"|перефразируй"
    r"|кратко изложи|резюмируй|번역|요약해|다시 써|바꿔 써|翻訳|要約|書き直|言い換え|traduce|traducir"
    r"|traducción"
    r"|reescribe|resume (?:el|este|la)|parafrasea|übersetze|übersetzung|umschreiben|formuliere|zusammenfass"
    r"|traduis|traduire|traduction|reformule|r[ée]sume (?:ce|le|la|les)|r[ée][ée]cris|traduza|traduzir"
    r"|tradução|reescreva|resuma|ترجم|ترجمة|أعد صياغة|لخص|تلخيص",
)
_REWRITE_WEAK = _alt(
    r"\b(?:summari[sz]e|summary|paraphrase|rewrite|rephrase|edit|proofread|translate)\b",
)

_MATH_STRONG = _alt(
    r"\$[^$\n]+\$|\\\\?(?:frac|sqrt|int|sum|prod|lim|binom|cdot|times|leq?|geq?|neq|mathbb|mathrm|infty"
    r"|partial|alpha|beta|theta|pi)\b",
    r"\b(?:solve|simplify|factor|factori[sz]e|differentiate|integrate|evaluate|expand) (?:for "
    r"|the (?:equation"
    r"|integral|expression|system|inequality|limit)|[0-9(]|[a-z] ?[=+\-^*/(]|\|)",
    r"\b(?:equations?|inequalit(?:y|ies)|integral|derivative|antiderivative|polynomial|quadratic|logarithm"
    r"|probability|theorem|lemma|prove that|proof that|hypotenuse|perimeter|circumference"
    r"|prove (?:the|that|it)|proposition \d|lemma|corollary|eigenvalues?|determinant|calculus|algebra"
    r"|arithmetic|geometry|trigonometr\w*|combinatorics"
    r"|permutations?|combinations of|divisible by|prime factor\w*|greatest common divisor"
    r"|least common multiple"
    r"|gcd|lcm|remainder when|modulo|fraction|percent(?:age)?|expected value|standard deviation|variance"
    r"|consecutive (?:integers|numbers|even|odd)|(?:positive|negative|even|odd) integers?"
    r"|the sum of the digits"
    r"|median of|mean of|mode of|(?:arithmetic|geometric|fibonacci|number) (?:sequence|series|progression)"
    r"|(?:taylor|power|infinite|fourier|harmonic) series|the nth term|irrational|rational number)\b",
    r"\b(?:area|volume|perimeter|surface area) of (?:a|an|the|this|each) (?:\w+ )?(?:circle|triangle|square"
    r"|rectangle|polygon|sphere|cube|cylinder|cone|shape|region|trapezoid|parallelogram|hexagon|pentagon"
    r"|prism)",
    r"\d\s*[+*×÷^]\s*\(?\s*\d|\d \s*[-/]\s*\(?\s*\d|\d\s*[-/]\s+\d|\b[a-z]\s*\^\s*\d|\d\s*[a-z]\s*[+\-=]"
    r"|\b\d+\s*%|\b[xyzn]\s*[=<>≤≥]\s*-?\d",
    r"(?s)\d.*\b(?:how (?:many|much|long|far|old|fast|often)|what (?:is|was|will be) the (?:total|sum|"
    r"difference|product|average|price|cost|value|number|percentage|ratio|probability|area|speed|distance)"
    r"|what percent|what fraction|calculate|compute|find the (?:value|number|total|sum|area))",
    r"(?s)\b(?:how (?:many|much|long|far|old)|calculate|compute)\b.*\d",
    # word problems: quantities (digits or number words) and a question about a quantity
    r"(?s)(?:\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty"
    r"|forty"
    r"|fifty|hundred|thousand|twice|thrice|half|double|triple|dozen|quarter)\b).*\b(?:how (?:many|much|long"
    r"|far"
    r"|old|tall|heavy|fast|often|big|wide|deep|high)|what(?:'s|’s| is| was| are| were| will be) (?:the|their"
    r"|his"
    r"|her|its|each|[a-z]+['’]s) (?:[\w'’-]+ ){0,2}(?:total|combined|average|initial|final|original|remaining"
    r"|new|sum|difference"
    r"|cost|price|weight|height|length|speed|age|amount|number|percentage|ratio|profit|area|perimeter|volume"
    r"|distance|time|value|score|rate|balance|salary|share))\b",
    r"\b(?:riddle|brain ?teaser|lateral thinking|logic(?:al)? (?:puzzle|problem|grid|question)|syllogism"
    r"|true, false,? or uncertain|which (?:word|one|number|shape|letter) (?:does not|doesn't) belong"
    r"|what comes next|next number in|knights? and knaves?|relationship between [a-z] and [a-z])\b",
    r"方程|求解|计算|計算|概率|几何|幾何|证明|證明|多少|уравнени|вычисли|реши задачу|сколько|вероятност"
    r"|докажи"
    r"|방정식|계산|확률|증명|몇 |方程式|計算|確率|証明|いくつ|ecuación|calcula|probabilidad|demuestra|cuántos"
    r"|cuánto|gleichung|berechne|wahrscheinlichkeit|beweise|wie viele|équation|calcule|probabilit[ée]"
    r"|d[ée]montre"
    r"|combien|equação|calcule|probabilidade|demonstre|quantos|quanto|معادلة|احسب|احتمال|برهن|كم",
)
_MATH_WEAK = _alt(
    r"\b(?:math|maths|mathematics|calculate|compute|puzzle|formula|triangle|circle|polygon|coins?|dice|odds"
    r"|statistics|statistical|estimate)\b|\d\s*[+\-*/]\s*\d|\d\s*(?:km/h|m/s|mph|km|kg|cm|mm|ml)\b"
    r"|[∀∃∈⊂ϵε∑∫√]",
)

_CREATIVE_STRONG = _alt(
    r"\btell me a (?:\w+ )?(?:story|joke|riddle|poem|fairy tale|fable)",
    r"\b(?:write|compose|craft|create|draft|generate|come up with|give me|invent|construct|brainstorm)\b"
    r"(?: [\w'’,-]+){0,5}? (?:stor(?:y|ies)|poems?|poetry|haikus?|limericks?|sonnets?|songs?|lyrics|raps?"
    r"|verses?"
    r"|novels?|chapters?|screenplays?|scripts? for (?:a|an|the|my) (?:video|film|movie|play|show|ad"
    r"|commercial"
    r"|podcast|youtube)|fairy ?tales?|fables?|jokes?|blog posts?|articles?|essays?|speech(?:es)?|toasts?"
    r"|eulog(?:y|ies)|wedding toasts?|toasts? for|slogans?|taglines?|ad copy|advertisements?|commercials?"
    r"|tweets?|captions?|dialogues?"
    r"|monologues?|scenes?|letters?|e-?mails?|cover letters?|bios?|product descriptions?|headlines?"
    r"|elevator pitch(?:es)?|plots?|characters?|names? (?:for|that)|name ideas|character (?:sheet|card)s?"
    r"|newsletters?"
    r"|press releases?|social media posts?|linkedin posts?|vows|birthday message|riddles?|puns?|melod(?:y"
    r"|ies)"
    r"|chord progressions?|jingles?|tunes?|conversations|dialogs?)\b",
    r"\b(?:pretend (?:to be|you are|you're|yourself)|role[- ]?play|in character|take on the (?:role|persona)"
    r"|assume the (?:role|persona)|embrace the role|embody|imagine yourself as|picture yourself as"
    r"|you are now"
    r"|let'?s play a game|text[- ]based (?:rpg|adventure|game)|dungeon master|game master)\b",
    r"\b(?:creative writing|short story|fan ?fic(?:tion)?|worldbuilding|storyline)\b",
    r"写一首|写一篇|写一个故事|写首诗|写诗|小说|故事|诗歌|напиши (?:стих|рассказ|историю|песню|сказку|эссе"
    r"|письмо)"
    r"|стихотворени|рассказ|시를 써|시 한 편|이야기를 써|소설|詩を書|物語|小説|escribe un (?:poema|cuento"
    r"|relato"
    r"|ensayo|correo)|poema|cuento|schreib(?:e)? (?:ein gedicht|eine geschichte|einen brief)|gedicht"
    r"|geschichte"
    r"|écris (?:un poème|une histoire|une lettre)|poème|histoire|escreva um (?:poema|conto|texto)|conto"
    r"|اكتب (?:قصيدة|قصة|مقالة|رسالة)|قصيدة|قصة",
)
_CREATIVE_WEAK = _alt(
    r"\b(?:write (?:me |us )?(?:a|an|the|my|some|\d+)|compose (?:a|an|me)|draft|brainstorm|imagine (?:you are"
    r"|you're)|creative|poem|poetry|fiction|lyrics"
    r"|describe a vivid|debate|d&d|dungeons (?:and|&) dragons|tabletop|campaign setting|rpg)\b",
)

_BARE_TOOL_OUTPUT = r"^\s*(?:[\[{]|traceback|error:|exit code|stdout|stderr|\$ |>>> )"

_STRONG: dict[str, str] = {
    AGENTIC: _TRANSCRIPT,
    GRADING: _GRADING_STRONG,
    CODING: _CODE_STRONG,
    REWRITE: _REWRITE_STRONG,
    MATH: _MATH_STRONG,
    CREATIVE: _CREATIVE_STRONG,
}
_WEAK: dict[str, str] = {
    GRADING: _GRADING_WEAK,
    CODING: _CODE_WEAK,
    REWRITE: _REWRITE_WEAK,
    MATH: _MATH_WEAK,
    CREATIVE: _CREATIVE_WEAK,
}

_WEAK_ANY = "|".join(_WEAK.values())
#: Output vocabulary in decision-index order: PRIORITY, then the default.
_NAMES = pa.array([*PRIORITY, CHAT], type=pa.string())


def _combine(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)
    return arr


def _strings(arr: pa.Array | pa.ChunkedArray | None, n: int) -> pa.Array:
    if arr is None:
        return pa.nulls(n, pa.string())
    out = _combine(arr)
    if pa.types.is_null(out.type):
        return pa.nulls(n, pa.string())
    if not pa.types.is_string(out.type):
        out = out.cast(pa.string())
    return out


def _match(texts: pa.Array, pattern: str) -> np.ndarray:
    hit = pc.match_substring_regex(texts, pattern)
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)


def _take(texts: pa.Array, idx: np.ndarray) -> pa.Array:
    return texts.take(pa.array(idx, type=pa.int64()))


def _has_tools(tools: pa.Array | pa.ChunkedArray | None, n: int) -> np.ndarray:
    if tools is None:
        return np.zeros(n, dtype=bool)
    arr = _combine(tools)
    if pa.types.is_null(arr.type):
        return np.zeros(n, dtype=bool)
    length = pc.fill_null(pc.list_value_length(arr), 0)
    return np.asarray(length.to_numpy(zero_copy_only=False) > 0, dtype=bool)


def _levels(texts: pa.Array, *, with_weak: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Priority scan of lower-cased ``texts``: (strong, weak) category index per row, -1 for none.

    ``strong[i]`` is the index in :data:`PRIORITY` of the first category with a strong hit;
    ``weak[i]`` the first with a weak hit, computed only for rows without any strong hit (weak
    evidence never matters otherwise). Each pass drops the rows already decided, so most rows
    cost a few regexes, not twelve.
    """
    n = len(texts)
    decided = np.full(n, -1, dtype=np.int8)
    weak = np.full(n, -1, dtype=np.int8)
    rows = np.arange(n)
    rare: np.ndarray | None = None
    for k, cat in enumerate(PRIORITY):
        open_rows = rows[decided < 0]
        if not len(open_rows):
            return decided, weak
        if cat in (AGENTIC, GRADING):
            if rare is None:
                rare = open_rows[_match(_take(texts, open_rows), _RARE_GATE)]
            open_rows = rare[decided[rare] < 0]
            if not len(open_rows):
                continue
        hit = _match(_take(texts, open_rows), _STRONG[cat])
        decided[open_rows[hit]] = k
    if not with_weak:
        return decided, weak
    # one pass of the union of weak patterns (cheap: plain keyword lists) before the per-category ones
    open_rows = rows[decided < 0]
    if len(open_rows):
        open_rows = open_rows[_match(_take(texts, open_rows), _WEAK_ANY)]
    for k, cat in enumerate(PRIORITY):
        pattern = _WEAK.get(cat)
        if pattern is None or not len(open_rows):
            continue
        hit = _match(_take(texts, open_rows), pattern)
        weak[open_rows[hit]] = k
        open_rows = open_rows[~hit]
    return decided, weak


def _int_column(values: pa.Array | pa.ChunkedArray | np.ndarray, n: int) -> np.ndarray:
    arr = pa.array(values) if isinstance(values, np.ndarray) else values
    out = np.asarray(pc.fill_null(arr, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    if len(out) != n:
        raise ValueError("n_messages must have one row per prompt")
    return out


def classify(
    prompts: pa.Array | pa.ChunkedArray,
    system_prompts: pa.Array | pa.ChunkedArray | None = None,
    tools: pa.Array | pa.ChunkedArray | None = None,
    n_messages: pa.Array | pa.ChunkedArray | np.ndarray | None = None,
) -> pa.StringArray:
    """Capability category of each request (one of :data:`CATEGORIES`).

    ``tools`` is the canonical ``list<string>`` column (names of tools offered);
    ``n_messages`` the number of messages in the request. A null prompt is classified from its
    tools and system prompt alone, and is null when neither says anything.
    """
    text = _strings(prompts, 0)
    n = len(text)
    system = _strings(system_prompts, n)
    if len(system) != n:
        raise ValueError("system_prompts must have one row per prompt")
    if not n:
        return pa.array([], pa.string())
    prompt_null = np.asarray(pc.is_null(text).to_numpy(zero_copy_only=False), dtype=bool)
    decided = np.full(n, -1, dtype=np.int8)
    weak = np.full(n, -1, dtype=np.int8)

    # 1. tools offered, or a system prompt that sets up an agent / a judge, override the text
    decided[_has_tools(tools, n)] = PRIORITY.index(AGENTIC)
    sys_rows = np.flatnonzero(~np.asarray(pc.is_null(system).to_numpy(zero_copy_only=False), dtype=bool))
    sys_rows = sys_rows[decided[sys_rows] < 0]
    sys_low = pc.utf8_lower(_take(system, sys_rows))
    if len(sys_rows):
        decided[sys_rows[_match(sys_low, _AGENT_SYSTEM)]] = PRIORITY.index(AGENTIC)
        open_sys = np.flatnonzero(decided[sys_rows] < 0)
        judge = open_sys[_match(_take(sys_low, open_sys), _GRADING_STRONG)]
        decided[sys_rows[judge]] = PRIORITY.index(GRADING)

    # 2. the prompt itself, in priority order
    rows = np.flatnonzero(~prompt_null & (decided < 0))
    if len(rows):
        low = pc.utf8_lower(_take(text, rows))
        decided[rows], weak[rows] = _levels(low)
        # a bare tool output (JSON, traceback, test log) deep in a conversation is an agent turn
        if n_messages is not None:
            nm = _int_column(n_messages, n)[rows]
            cand = np.flatnonzero((decided[rows] < 0) & (weak[rows] < 0) & (nm >= 3))
            if len(cand):
                bare = cand[_match(_take(low, cand), _BARE_TOOL_OUTPUT)]
                decided[rows[bare]] = PRIORITY.index(AGENTIC)

    # 3. nothing in the prompt: the system prompt's category, if any. Only strong evidence
    # counts here: SaaS system prompts are full of format words ("respond with JSON", "rate
    # from 1 to 3") that say nothing about the capability.
    local = np.flatnonzero((decided[sys_rows] < 0) & (weak[sys_rows] < 0))
    if len(local):
        strong, _ = _levels(_take(sys_low, local), with_weak=False)
        decided[sys_rows[local]] = strong

    out = np.where(decided >= 0, decided, np.where(weak >= 0, weak, len(PRIORITY))).astype(np.int32)
    # a null prompt with no tools / system evidence has no category
    unknown = prompt_null & (decided < 0) & (weak < 0)
    labels: pa.StringArray = _NAMES.take(pa.array(out, mask=unknown))
    return labels


# ---------------------------------------------------------------------------------------------
# Reference data (evaluation only): readers for ../shared/data/prompts, used by the tests and by
# bench/bench_cot_capability.py. Nothing here runs at ingest.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceItem:
    """One real prompt with the category its source implies."""

    source: str
    prompt: str
    system_prompt: str | None
    expected: str
    group: str  # the source's own label (cluster, category, template name)


def category_map() -> dict[str, dict[str, str | None]]:
    """The shipped mapping from source labels to our categories (``data/capability_map.json``).

    Keys: ``"arena_cluster"`` (arena-hard cluster name → category, or null where the name does
    not determine one) and ``"mt_bench_category"``.
    """
    raw = resources.files("distillshield.signals").joinpath("data/capability_map.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(raw)
    return {k: dict(v) for k, v in data.items() if not k.startswith("_")}


class _Filler(dict[str, str]):
    """Fills a judge template's placeholders: questions get a real question, answers a worked one."""

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def __missing__(self, key: str) -> str:
        if key.startswith("question"):
            return self.question
        return "Step 1: 16 - 3 - 4 = 9. Step 2: 9 * 2 = 18. The answer is 18."


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _first_human_turn(conversation: str) -> str:
    body = conversation.split("Human:", 1)[1] if "Human:" in conversation else conversation
    return body.split("\n\nAssistant:", 1)[0].strip()


def legit_prompts(corpus: str | Path) -> dict[str, list[str]]:
    """Real legitimate prompts from ``corpus`` (``../shared/data/prompts``), by source.

    ``hh_rlhf``: first human turn of each helpful-base test conversation; ``arena_hard``: the
    500 prompts; ``mt_bench``: both turns of the 80 questions.
    """
    legit = Path(corpus) / "legit"
    return {
        "hh_rlhf": [
            _first_human_turn(r["chosen"]) for r in _jsonl(legit / "hh_rlhf_helpful_base_test.jsonl.gz")
        ],
        "arena_hard": [r["prompt"] for r in _jsonl(legit / "arena_hard_v0.1.jsonl")],
        "mt_bench": [t for r in _jsonl(legit / "mt_bench.jsonl") for t in r["turns"]],
    }


def reference_items(corpus: str | Path) -> list[ReferenceItem]:
    """Real prompts with an expected category: GSM8K, HumanEval, judge templates, arena-hard
    (mapped cluster names; clusters mapped to null are left out) and MT-bench first turns."""
    root = Path(corpus)
    mapping = category_map()
    items = [
        ReferenceItem("gsm8k", r["question"], None, MATH, "gsm8k")
        for r in _jsonl(root / "capability" / "gsm8k_test.jsonl")
    ]
    items += [
        ReferenceItem("humaneval", r["prompt"], None, CODING, "humaneval")
        for r in _jsonl(root / "capability" / "humaneval.jsonl.gz")
    ]
    filler = _Filler(items[0].prompt if items else "What is 2 + 2?")
    for r in _jsonl(root / "capability" / "judge_prompts.jsonl"):
        # the template as sent, with its own system prompt (FastChat sends them together), and the
        # same template filled with a math question and answers: the math must not win over grading
        items.append(ReferenceItem("judge", r["prompt_template"], r.get("system_prompt"), GRADING, r["name"]))
        filled = r["prompt_template"].format_map(filler)
        items.append(ReferenceItem("judge_filled", filled, r.get("system_prompt"), GRADING, r["name"]))
    arena_map = mapping["arena_cluster"]
    for r in _jsonl(root / "legit" / "arena_hard_v0.1.jsonl"):
        cat = arena_map.get(r["cluster"])
        if cat is not None:
            items.append(ReferenceItem("arena_hard", r["prompt"], None, cat, r["cluster"]))
    mt_map = mapping["mt_bench_category"]
    for r in _jsonl(root / "legit" / "mt_bench.jsonl"):
        cat = mt_map.get(r["category"])
        if cat is not None:
            items.append(ReferenceItem("mt_bench", r["turns"][0], None, cat, r["category"]))
    return items
