"""Chain-of-thought elicitation: does a prompt ask the model to expose or reconstruct its reasoning?

Why it matters. A distiller wants the *reasoning*, not just answers: a student trained on
full reasoning traces learns far more per exchange. The public reports describe two ways to
get it: (1) coercing the model to reveal its hidden reasoning — "print your internal
chain of thought verbatim", "don't summarise your thinking", often in non-English
languages; (2) *reconstruction* — supplying a finished answer and asking the model to write
the reasoning that leads to it (so the harvested pair is a clean (question, rationale,
answer) training example), often with "don't mention you were given the answer".

What is *not* the tell. "Think step by step", "show your work", "explain your reasoning" are
what every student, teacher and benchmark harness sends (GSM8K-style evaluation prompts use
them verbatim). They get their own label, ``step_by_step``, so downstream scoring can weigh
them near zero; only ``expose_reasoning`` is a distillation indicator, and even that one is
only damning in aggregate (one curious user asking "what were you thinking?" is normal;
thousands of accounts doing it on a math curriculum is not).

How. Rules written as RE2 regular expressions, evaluated column-wise with
``pyarrow.compute.match_substring_regex`` (no per-row Python). A cheap keyword pre-filter
selects the rows that mention reasoning, thinking, steps or answers in any supported
language, and a gate regex narrows those further before the other features run (see
:func:`cot_features`): every RE2 pass costs about the same per row whatever its size, so the
number of passes per row is what sets the throughput. Each feature is a family of phrasings
across English, Chinese, Russian, Korean, Japanese, Spanish, German, French, Portuguese and
Arabic (plus a few phrases in Italian, Vietnamese, Turkish, Hindi and Polish); the score
is a noisy-OR of feature weights and of feature *combinations* (e.g. "an answer is supplied"
AND "write the reasoning that leads to it"). Weights are hand-set. They were written against
the ``dev`` split of the labelled set in ``data/cot_eval.jsonl``; the ``test`` and ``test2``
splits were each evaluated once, held out, before their errors were fixed (first-look figures
in docs/signals-cot-capability.md). A trained char n-gram model was evaluated against these
rules and not shipped; the doc has the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["EXPOSE", "LABELS", "NONE", "STEP", "THRESHOLD", "cot_elicitation", "cot_features"]

EXPOSE = "expose_reasoning"
STEP = "step_by_step"
NONE = "none"
#: Label vocabulary of the ``cot_elicit`` column.
LABELS: tuple[str, ...] = (NONE, STEP, EXPOSE)
#: Score at or above which a prompt is labelled ``expose_reasoning``.
THRESHOLD = 0.5
_LABEL_ARRAY = pa.array(LABELS, type=pa.string())


def _alt(*parts: str) -> str:
    return "(?:" + "|".join(parts) + ")"


# ---------------------------------------------------------------------------------------------
# Vocabulary. Every pattern is matched against the *lower-cased* prompt (utf8_lower), so the
# patterns themselves are lower case. Non-English parts are per-language phrase lists: a prompt
# is almost always in one language, so AND-ing two features rarely mixes languages by accident.
# ---------------------------------------------------------------------------------------------

#: The thing a distiller wants: the model's reasoning / thinking / chain of thought.
_OBJ_EN = (
    r"(?:reasoning|thinking|thoughts?|thought[- ]process(?:es)?|train of thought|chain[- ]of[- ]thoughts?"
    r"|\bcot\b|monolog(?:ue)?|deliberations?|scratch ?pad|scratch[- ]?work|cognition|inner voice"
    r"|internal notes|rationale|reasoned|(?:internal|inner|hidden) (?:processing|workings|computations?)"
    r"|mental process|everything (?:you|that you) (?:think|thought)|(?:full|complete|entire|whole|raw) trace"
    r"|what (?:went|was going) on (?:in"
    r"|inside) (?:your|you)|<\s*/?\s*(?:think|reasoning|scratchpad|thought)\b)"
)
_OBJ_ML = _alt(
    # zh (simplified + traditional)
    r"推理|思考|思维|思維|想法|思路|思绪|内心独白|内部独白|草稿|在想|想的|想什么|想什麼",
    # ru
    r"рассужден|размышлен|ход (?:твоих |своих |ваших )?мысл|мысли|мыслей|монолог|черновик|цепочк[аиу] рассужд"
    r"|думал|подумал",
    # ko
    r"추론|사고|생각|풀이 과정|독백",
    # ja
    r"推論|思考|考えた|考えて|考え|独白",
    # es / pt / it
    r"razonamiento|pensamientos?|proceso de pensamiento|mon[oó]logo|racioc[ií]nio|pensamentos?"
    r"|processo de pensamento|ragionamento|pensier|pensaste|pens[oó](?:$|\PL)|pensou|hai pensato",
    # de
    r"gedanken|überlegungen|denkprozess|denkweg|gedankeng[aä]ng|gedankenkette|monolog|reasoning|gedacht",
    # fr
    r"raisonnement|pens[ée]es?|pens[ée](?:$|\PL)|r[ée]flexion|cheminement|monologue",
    # ar
    r"تفكير|أفكار|افكار|الاستدلال|استدلال|حوارك الداخلي|التفكير|فكرت",
    # vi, tr, hi, pl
    r"suy nghĩ|akıl yürüt|düşünce|सोच|rozumowani|myśli",
)
_OBJ = _alt(_OBJ_EN, _OBJ_ML)

#: "hidden / internal / raw / private …" right before the reasoning object (same language).
_HIDOBJ = _alt(
    r"(?:internal|inner|hidden|private|secret|raw|unfiltered|unedited|unredacted|unsummari[sz]ed|unpolished"
    r"|unabridged|uncondensed|uncut|literal|concealed|invisible|collapsed|underlying|actual|real|true"
    r"|behind[- ]the[- ]scenes)[ ,]+(?:[\w'-]+[ ,]+){0,3}?" + _OBJ_EN,
    r"reasoning (?:trace|tokens?|channel|buffer|block|log|section|traces)|thinking (?:block|section|tokens?"
    r"|channel|markers?|tags?|traces?|logs?)|thought tokens?|chain[- ]of[- ]thought tokens",
    r"<\s*/?\s*(?:think|thinking|reasoning|scratchpad|thought|cot)\s*>",
    # the reasoning *you* produced / hid / used: a specific trace, not an explanation
    r"(?:reasoning|thinking|thoughts?|thought process|chain[- ]of[- ]thought"
    r"|deliberation)[ ,]+(?:that )?(?:you|u)"
    r"(?: had| have)? (?:used|had|hid|hide|keep hidden|produced|generated|performed|went through|go through"
    r"|goes through|did|carried out"
    r"|engaged in"
    r"|follow(?:ed)?)|(?:reasoning|thinking|thoughts?|chain[- ]of[- ]thought) (?:is|are) (?:normally "
    r"|usually "
    r"|always |otherwise )?(?:hidden|private|summari[sz]ed|not shown|collapsed)|(?:reasoning|thinking"
    r"|thoughts)"
    r" (?:will|won't|would) (?:not )?be (?:summari[sz]ed|hidden|shown in full)|(?:really|actually|truly|"
    r"internally) (?:reasoned|thought|think|were thinking|processed)|(?:internal|inner|hidden) (?:processing"
    r"|workings|computations?|mental process)",
    # zh
    r"(?:内部|內部|隐藏|隱藏|原始|真实|真實|完整|全部|内心|內心)的?(?:推理|思考|思维|思維|思路|想法)"
    r"|推理轨迹|推理軌跡|推理痕迹|思考痕迹|推理记录|思维链|思維鏈|内心独白|内部独白",
    # ru
    r"(?:внутренн|скрыт|сыр|настоящ|нефильтрованн|полн)\pL* (?:\pL+ )?(?:рассужден|размышлен|монолог|мысл"
    r"|цепочк|ход)|трейс рассуждени|черновик рассуждени|ход (?:твоих |своих |ваших )?мыслей",
    # ko
    r"(?:내부|숨겨진|숨긴|원본|실제|진짜)\s?(?:의\s)?(?:추론|사고|생각)|사고 사슬|추론 흔적|사고의 흐름",
    # ja
    r"(?:内部|隠され|隠れ|生の|本当の|頭の中)\S{0,4}(?:推論|思考|考え)|推論(?:の連鎖|トレース|過程)"
    r"|思考の(?:連鎖|流れ)"
    r"|思考過程|思考プロセス",
    # es / pt / it
    r"(?:razonamiento|monólogo|pensamiento|raciocínio|monólogo|ragionamento) (?:interno|interior|oculto"
    r"|nascosto"
    r"|interiore)|cadena de pensamiento|cadeia de pensamento|catena di pensiero|traza de razonamiento"
    r"|rastro de racioc[ií]nio|mon[oó]logo interior",
    # de
    r"(?:intern|versteckt|verborgen|ungefiltert|roh|inner)\pL* (?:\pL+ )?(?:gedanken|überlegungen|denkprozess"
    r"|monolog|reasoning)|gedankenkette|reasoning-trace|denkweg",
    # fr
    r"(?:raisonnement|monologue) (?:interne|int[ée]rieur|cach[ée])|cha[iî]ne de pens[ée]e"
    r"|trace de raisonnement"
    r"|processus de r[ée]flexion brut",
    # ar
    r"(?:تفكيرك|تفكير|الاستدلال|حوارك) ?(?:الداخلي|المخفي|الخفي)|سلسلة الأفكار|سلسلة التفكير|أثر الاستدلال",
    # vi, tr, hi, pl
    r"suy nghĩ nội bộ|iç akıl yürüt|आंतरिक सोच|wewnętrzne rozumowanie",
)

#: Verbatim / unsummarised / unfiltered: the reasoning *as produced*, not an explanation.
_VERBATIM = _alt(
    r"verbatim|word[- ]for[- ]word|exactly as (?:it|they|you)|as (?:it|they) (?:occurred|happened|w(?:as"
    r"|ere) "
    r"generated|came)|exactly what (?:you|went|was)|(?:quote|copy|paste|repeat|reproduce)(?: it| them"
    r"| that)? exactly"
    r"|, exactly\b|exactly[.!]|unedited|unfiltered|unredacted|unabridged|uncondensed|uncut|unsummari[sz]ed"
    r"|\braw\b|literal|(?:don'?t|do not|never|without|stop|no) (?:\w+ )?(?:summar|condens|compress|paraphras"
    r"|abridg|clean|tid|redact|edit|filter|omit|skip|leav|compress|rephras|polish)|not (?:a|the|an) (?:\w+ )?"
    r"(?:summary|paraphrase|explanation|cleaned|cleaned-up|tidy|tidied|public|polished|post-hoc|sanitized)"
    r"|no summar(?:y|ies)|precisely what|in full\b|nothing "
    r"(?:left out|omitted)|without omissions?|with nothing omitted|including (?:all|any|the|every)? ?(?:false"
    r" starts|dead ends|abandoned|uncertain|mistakes|ones you)",
    # zh
    r"原封不动|逐字|一字不差|一个字都不要删|不要删|不要(?:总结|總結|摘要|省略|概括)|不要做?任何(?:总结|修改)"
    r"|原文|原样|完整地?输出"
    r"|完整地?顯示",
    # ru
    r"дословно|слово в слово|без (?:сокращени|изменени|фильтр|пропуск)|целиком|полностью|не (?:сокращай"
    r"|пересказывай)",
    # ko
    r"그대로|요약하지 말고|요약 없이|빠짐없이|한 글자도|전부|숨기지 말고",
    # ja
    r"そのまま|要約せず|一字一句|省略せず|加工せず|隠さず|全部|すべて",
    # es / pt / it
    r"palabra por palabra|sin resumir|sin filtrar|tal cual|tal como|literalmente|palavra por palavra"
    r"|sem resumir"
    r"|sem filtro|exatamente|exactamente|parola per parola|senza riassumere",
    # de
    r"wortwörtlich|wörtlich|ungekürzt|ungefiltert|unverändert|vollständig",
    # fr
    r"mot pour mot|sans (?:le |la |les )?r[ée]sumer|sans filtre|tel quel|exactement|en entier"
    r"|l'int[ée]gralit[ée]",
    # ar
    r"حرفي|دون تلخيص|بدون تلخيص|بالضبط|كاملة|كاملاً|كاملا",
    # vi, tr, hi, pl
    r"nguyên văn|không tóm tắt|kelimesi kelimesine|özetlemeden|शब्दशः|बिना सारांश|słowo w słowo",
)

#: Strong "put it on screen" verbs aimed at the model's reasoning.
_REVEAL = _alt(
    r"\b(?:reveal|expose|dump|print|output|emit|echo|paste|copy|transcribe|disclose|unveil|leak|spill"
    r"|reproduce|repeat|recreate|narrate|display|show|let me see|give me|tell me|write (?:out|down)"
    r"|include|quote|share|log)\b",
    r"输出|輸出|显示|顯示|展示|告诉我|告訴我|贴出|貼出|列出|复述|複述|公开|公開|写出|寫出|给我看|說出|说出",
    r"выведи|вывести|покажи|раскрой|скопируй|напечатай|повтори|открой",
    r"출력|보여|공개|적어|알려",
    r"出力|見せ|公開|書き出|示して|教えて",
    r"muestra|mu[ée]strame|revela|copia|imprime|comparte|compartir|mostre|mostra|revele|copie|imprima"
    r"|compartilh"
    r"|rivela",
    r"\bzeig|gib\b.*\baus\b|offenleg|kopiere|ausgeben",
    r"affiche|r[ée]v[eè]le|montre|copie|partager|imprime",
    r"اعرض|اكشف|انسخ|اطبع|مشاركة|أظهر",
    r"hiển thị|göster|दिखाओ|pokaż",
)

#: The unambiguous subset of :data:`_REVEAL` ("print/dump/paste your reasoning" is not how a
#: teacher asks for an explanation).
_REVEAL_STRONG = _alt(
    r"\b(?:reveal|expose|dump|print|emit|echo|paste|copy|copy-paste|transcribe|disclose|unveil|leak|spill)\b",
    r"贴出|貼出|复述|複述|公开|公開|原文贴|выведи|раскрой|скопируй|напечатай|출력|공개|公開|書き出|revela"
    r"|copia|imprime"
    r"|revele|copie|imprima|rivela|offenleg|kopiere|r[ée]v[eè]le|اكشف|انسخ|اطبع",
)

#: Addressed to the model ("your …"), in each language; Japanese and Chinese often drop it.
_YOU = _alt(
    r"\b(?:you|your|yours|yourself|you'd|you've|you're|u)\b",
    r"你|您",
    r"(?:^|\PL)(?:ты|тво|вы|ваш|сво)",
    r"너|네가|니가|당신|너의",
    r"あなた|君|お前|自分",
    r"(?:^|\PL)(?:tus?|t[uú]|te|voc[eê]s?|seus?|suas?|teus?|tuo|tuoi)(?:$|\PL)",
    r"\bdu\b|\bdein|\bdir\b|\bsie\b|\bihr",
    r"\btu\b|\bton\b|\bta\b|\btes\b|\bvotre\b|\bvos\b|\bvous\b",
    r"ك(?:$|\PL)|أنت|انت",
)

#: "all / every / complete" + thinking: the whole trace, not an explanation.
_ALLOBJ = _alt(
    r"(?:\ball|every|each|entire|whole|full|complete|everything)\b(?: of)?(?: (?:your|the|my|that|this))?"
    r"(?: [\w'-]+){0,2}? (?:thinking|thoughts?|thought[- ]process|chain[- ]of[- ]thought|monolog(?:ue)?"
    r"|scratchpad|reasoning trace|internal steps?|intermediate thoughts?|inner workings|deliberation)",
    r"\beverything (?:you|that you) (?:think|thought)|every (?:single )?thought|(?:full|complete|entire"
    r"|whole)"
    r" trace",
    r"完整的?(?:思考|思维|思維|推理)|全部(?:的)?(?:思考|推理|想法)|所有(?:的)?(?:想法|思考)",
    r"вс[её] (?:\pL+ )?(?:мысл|рассужд|что ты (?:думал|подумал))|все (?:свои |твои )?мысли|полный ход мысл",
    r"모든 (?:생각|사고|추론)|(?:생각|사고|추론)\S* (?:\S+ )?전부",
    r"(?:思考|推論|考え)\S*(?:全部|すべて|完全な形)|(?:全部|すべて)の(?:思考|推論|考え)",
    r"todos (?:tus|sus|os seus|seus|os) pensamentos?|todos (?:tus|sus) pensamientos",
    r"alle (?:deine |ihre )?gedanken|vollständigen denkprozess",
    r"toutes tes pens[ée]es|tout ton raisonnement|l'int[ée]gralit[ée] de (?:ton|votre) raisonnement",
    r"كل أفكارك|(?:تفكيرك|التفكير|تفكير)\S* (?:\S+ )?(?:كاملة|كاملاً|كاملا|بالكامل)",
)

#: A finished answer / label / solution is supplied in the prompt.
_ANSWER_GIVEN = _alt(
    r"(?:correct|right|reference|gold|target|known|given|provided|supplied|ground[- ]truth|expected|accepted"
    r"|official)"
    r" (?:answer|solution|label|output|result|choice|option)s?\b",
    r"(?:^|\n)\s*(?:final |correct |reference )?(?:answer|solution|label|output|result|gold|a)s?\s*[:=]"
    r"|(?:answer|solution|label) (?:given|provided|supplied)|\b(?:answer|label|solution|output)\s*=\s*\S",
    r"\b(?:the )?answer (?:is|was|key)\b|answer key|answers? (?:given|provided|supplied|below|above)"
    r"|(?:i have|we have|we know|i know|here (?:is|are)) (?:the )?(?:final |correct )?(?:answer|solution)"
    r"|take (?:the|this) answer|the answer i give|given (?:this|the|a) (?:answer|solution|label)"
    r"|(?:question|problem)[- ]answer pairs?|gold answer|textbook says|answer key says"
    r"|(?:questions?|problems?) (?:and|with) (?:the|its|their) (?:correct )?answers?|here'?s the (?:output"
    r"|answer"
    r"|solution|result)|(?:a|the) (?:question|problem|task) and (?:the|its) (?:answer|solution|output)",
    r"答案[是为為：:]|正确答案|正確答案|参考答案|參考答案|已知(?:正确)?答案|给定答案|給定答案"
    r"|根据(?:上面的)?答案|标准答案|標準答案",
    r"ответ[:\s]*[—–-]|ответ:|правильный ответ|дан (?:правильный )?ответ|ответ известен",
    r"정답[은:]|정답은|답[은:]",
    r"答え[はが:：]|正解[はが:：]",
    r"respuesta (?:es|correcta)|respuesta:|resposta (?:é|correta)|resposta:|la risposta è",
    r"antwort (?:lautet|ist)|lösung:|richtige lösung|antwort:",
    r"r[ée]ponse (?:est|:)|bonne r[ée]ponse|sa r[ée]ponse|solution :",
    r"الإجابة (?:هي|الصحيحة)|الإجابة:|الاجابة|الجواب (?:الصحيح|هو)",
)

#: A request to *produce* reasoning / rationale / derivation / solution path.
_REASON_REQ = _alt(
    r"\b(?:write|produce|generate|give|provide|construct|create|reconstruct|recreate|reverse[- ]engineer"
    r"|rewrite|compose|annotate|draft|output|turn|explain|justify|derive|narrate|recreate)\b[^.?!\n]*"
    r"(?:reasoning|rationale|chain[- ]of[- ]thought|derivation|thought process|solution path|thinking|steps"
    r"|explanation|justification|worked (?:solution|explanation|example)s?|solutions?|line of reasoning"
    r"|thoughts)",
    r"(?:reasoning|rationale|steps|thinking|thought process|derivation|solution|chain of thought|path)"
    r"[^.?!\n]*(?:leads?|leading|arriv|reach|gets?|ends?|ending|connect|produc|justif|explain|precede"
    r"|would (?:have )?produce)",
    r"rationale\s*[:(]",
    r"推理过程|推理過程|解题思路|解題思路|思维过程|思維過程|思考过程|解题过程|推导|思维链|思維鏈",
    r"рассуждени|ход решения|цепочк",
    r"추론 과정|풀이 과정|사고 사슬|추론",
    r"推論|思考の流れ|推論過程|解き方",
    r"razonamiento|racioc[ií]nio|ragionamento",
    r"denkweg|gedankeng[aä]nge|gedankenschritte|herleitung|überlegungen",
    r"raisonnement|cheminement",
    r"الاستدلال|خطوات التفكير|التفكير",
)

#: Phrasings that tie the reasoning to the supplied answer ("that leads to this answer").
_LEADS_TO = _alt(
    r"(?:leads?|leading|arriv\w*|reach\w*|gets?|ends?|ending|connect\w*|produc\w*|justif\w*|precede\w*"
    r"|results? in|culminat\w*|explain\w*|support\w*)\s+(?:at |to |in )?(?:exactly )?(?:this|that|the|these"
    r"|those|each|it|them)\s+(?:\w+\s+)?(?:answer|solution|label|output|result|conclusion|code|key answer)",
    r"(?:ends?|ending|finish\w*|conclud\w*) (?:with|on) (?:the|this|that|each) (?:\w+ )?(?:answer|label"
    r"|solution"
    r"|output)|(?:arriv\w*|gets?|leads?|lands?) there",
    r"(?:why|how) (?:the answer|this answer|b|the label|it) is correct|why (?:[a-e]|\([a-e]\)) is correct",
    r"ends in|ending in|arrive at|arrives at|that (?:produces?|connects?) them",
    r"得出(?:这个|該|这一|此|标准|參考|参考)?答案|得到参考答案|得到(?:这个)?答案|导出|推出这个答案|对应的解题"
    r"|根据上面的答案",
    r"приводит к (?:этому|нему|ответу)|ведёт|ведет к",
    r"답에 도달|정답으로 이어지는|정답에 이르는|답으로 이어",
    r"答えに至る|正解につながる|答えにつなが",
    r"lleva a (?:esa|esta|la)|llega a ella|justifica esta|leva a (?:essa|esta)|chega nela|porta a",
    r"zu dieser (?:antwort|lösung) führ|dahin führen",
    r"m[èe]ne [àa] cette|qui y m[èe]ne",
    r"تؤدي إلى (?:هذه|الإجابة)|تؤدي إليها|يؤدي إلى هذ|يوصل إلى|توصل إلى",
)

#: Pretend-you-solved-it / hide-that-it-was-given: the clean-training-example tell.
_CONCEAL = _alt(
    r"(?:don'?t|do not|never|without)\s+(?:\w+\s+){0,2}(?:mention|say|reveal|indicat|stat|let on|refer|admit"
    r"|disclos|hint)\w*[^.?!\n]*(?:given|provided|supplied|told|knew|know|key|answer)",
    r"as (?:if|though) (?:you|it|these|this|they)\b[^.?!\n]*(?:solv|work|came|produc|figur|thought"
    r"|were|was|wrote|your own)",
    r"in your own voice|as (?:your|the model'?s) own (?:thoughts|reasoning|thinking)|(?:phrased|written|read)"
    r" (?:as|like) (?:the model'?s|your) own|first-person thoughts|like the model'?s own",
    r"不要提到|不要提及|不要说明|像你自己|像是你自己|看起来像你自己|写成你自己",
    r"не упоминай|как будто ты|как будто это твои",
    r"언급하지 마|네가 (?:직접|스스로)|스스로 생각한 것처럼",
    r"触れずに|自分で(?:解い|考え)たかのよう|自分で考えたように",
    r"sin mencionar|como si (?:lo hubieras|fuera tuyo)|sem mencionar|como se (?:voc[eê] tivesse|fosse seu)",
    r"ohne zu erwähnen|als hättest du|als wären es deine|als deine eigenen",
    r"sans mentionner|comme si tu l'avais",
    r"دون أن تذكر|كأنك|كأنها أفكارك|كأنه تفكيرك",
)

#: Jailbreak / role-play framings (only ever a booster: harmless alone).
_JAILBREAK = _alt(
    r"developer mode|debug mode|override|jailbreak|no restrictions?|without (?:any )?restrictions"
    r"|unrestricted"
    r"|(?:ignore|forget|bypass|disregard) (?:the |any |your |all )?(?:\w+ )?(?:rules?|instructions?|policy"
    r"|guidelines)|pretend (?:you are|to be|you're)|you are (?:now )?[a-z]*(?:gpt|box|mode)|stay in character"
    r"|authori[sz]ed to|roleplay|role-play|transparency mode|visibility=|never hides?",
    r"没有任何限制|没有限制|忽略|無限制",
    r"без ограничений|игнорируй|представь, что ты",
    r"제한 없는|무시",
    r"制限のない|無視",
    r"sin restricciones|sem restrições|ignora (?:la|las|el|a|as|o|os) (?:regla|regra|instrucc|norma|restric)",
    r"ohne einschränkungen|ignoriere die (?:regel|anweisung)",
    r"sans restrictions|ignore (?:la|les) (?:consigne|r[eè]gle|instruction)",
    r"بلا قيود|تجاهل",
)

#: The previous turn ("your last answer"): asking what happened inside, after the fact.
_PAST = _alt(
    r"(?:previous|last|prior|preceding|earlier) (?:\w+ )?(?:answer|reply|response|turn|message|output)"
    r"|what (?:were|was) (?:you|going on)|when you (?:wrote|answered|gave|replied)|before (?:you|this) "
    r"(?:answer|repl|respon|wrote|tidied|produc)|before answering|before (?:giving|producing|every|each)",
    r"上一轮|上一次|刚才|剛才|之前的回答|回答之前|回答前",
    r"предыдущ|когда отвечал|прежде чем",
    r"이전 답변|방금|답하기 전에|답변 앞에",
    r"さっき|前の回答|回答する前|回答の前",
    r"anterior|antes de (?:responder|contestar|dar)|precedente|prima di rispondere",
    r"letzten antwort|bevor du|vor (?:jeder|der) antwort",
    r"pr[ée]c[ée]dente|avant de r[ée]pondre|avant chaque",
    r"السابقة|قبل أن تجيب|قبل كل",
)

#: The model's own past thinking as the object: "what you were thinking", "lo que pensaste".
_THOUGHT_VERB = _alt(
    r"what (?:were|was) (?:you|u) (?:actually |really |truly )?thinking|"
    r"what (?:you|u) (?:were |was )?(?:actually |really |truly )?['\"]?(?:thinking|thought)\b|whatever (?:you"
    r"|u)"
    r" (?:were )?['\"]?(?:thinking|thought)|how you (?:really|actually) (?:reasoned|thought)"
    r"|what (?:went|was going) on (?:in|inside) (?:your|you)|what your (?:chain[- ]of[- ]thought|reasoning"
    r"|thinking|thoughts|scratchpad|inner monologue) (?:said|says|was|were|contained|looked like)",
    r"你(?:刚才|剛才|当时|真正|实际|實際)?(?:在)?想(?:的|什么|什麼)|在想什么",
    r"что ты (?:на самом деле |действительно )?(?:думал|подумал)|о ч[её]м ты думал",
    r"생각했던|했던 생각|무슨 생각",
    r"考えていたこと|考えたこと|何を考え",
    r"lo que (?:pensaste|pens[oó])|o que (?:voc[eê] )?pensou|ciò che hai pensato",
    r"was du (?:\pL+ )?(?:gedacht|gedacht hast)",
    r"ce que tu as pens[ée]|ce que vous avez pens[ée]",
    r"ما فكرت|بما فكرت",
)

#: "internally" as an adverb next to thinking ("what you thought internally").
_INTERNAL = _alt(
    r"\binternally\b|behind the scenes|under the hood|in your head|inside you\b",
    r"internamente|en interne|\bintern\b|داخلياً|داخليا|内部で|内部的に|내부적으로|внутри себя|内部地|在内部",
)

#: Harvest framing: the output is explicitly meant as training data.
_DATASET = _alt(
    r"training data|training examples?|fine-?tun|(?:building|build|collecting|creating|for) (?:a |my |our )?"
    r"(?:\w+ )?dataset|as (?:a )?worked examples?|reasoning data|(?:reasoning|cot) (?:annotations?|traces)"
    r"|annotations? should|distill",
    r"训练数据|訓練數據|数据集|數據集|обучающ|датасет|학습 데이터|데이터셋|学習データ|データセット"
    r"|datos de entrenamiento|conjunto de datos|dados de treinamento|trainingsdaten"
    r"|données d'entra[iî]nement",
)

#: "Just the answer, no explanation": an explicit *opt-out* of reasoning.
_NO_EXPLAIN = _alt(
    r"(?:no|without|skip the|don'?t (?:need|want) (?:an?|the|any)?) ?(?:explanations?|reasoning|working"
    r"|work shown)"
    r"|(?:don'?t|do not|no need to) (?:show|explain|give)(?: me)? (?:your |the |any )?(?:work|reasoning|steps"
    r"|explanation)|(?:^|[.!?:,]\s*)(?:just|only) (?:give me |tell me |output |return )?(?:the )?(?:final )?"
    r"(?:answer|number|result|letter)\b|no explanation|without explaining|don'?t explain|solo dime"
    r"|no me expliques",
    r"不要解释|不用解释|只给答案|只要答案|без объяснени|только ответ|설명 없이|説明不要|答えだけ"
    r"|sin explicaci"
    r"|sem explica|ohne erkl|sans explication",
)

#: Second-hand study of reasoning as a *topic*, in fiction, or under a grading rubric: damp the score.
_TOPIC = _alt(
    r"^(?:what is|what's|what are|explain the|explain how|how do|how does|why do|why does|which|who|"
    r"can you recommend|summari[sz]e|tell me about|describe)\b[^?]*(?:prompting|models?|llms?|o1"
    r"|paper|concept|controversy|companies|humans?|people|mind)",
    r"\b(?:write|compose|draft)\s+(?:a|an|the|me a)\s+(?:[\w-]+\s+){0,3}(?:scene|story|poem|novel|script"
    r"|screenplay|chapter|dialogue|song|blog|article|post|paper|memo|email|letter|essay|linkedin)",
    r"^(?:什么是|什麼是|что такое|qu[ée] es (?:el|la)|was ist|qu'est-ce que|o que é|ما هو)|뭐야\??$|とは何",
    r"\b(?:my|a|the|his|her|their) (?:[\w-]+ )?(?:novel|story|character|protagonist|screenplay)s?\b"
    r"|\bfiction\b"
    r"|\bnovel'?s\b",
    # grading someone else's reasoning against a rubric is grading, not exposure
    r"\brubric\b|\bgrading (?:a|the|this) (?:response|answer)|\b(?:grade|score|evaluate) (?:the|this|each) "
    r"(?:response|answer|solution)|评分标准|оцени ответ|по критериям|채점 기준|採点基準|criterios de evaluaci"
    r"|bewertungskriterien|grille d'[ée]valuation",
)

#: Somebody else's reasoning (a judge's, an author's, a character's, the one in a poem): damp it,
#: unless the prompt also addresses the model or names the model as the owner.
_THIRD_PARTY = _alt(
    r"\b[a-z]+'s (?:[\w-]+ )?(?:reasoning|thinking|thoughts|thought process|monologue|rationale"
    r"|chain[- ]of[- ]thought)|\b(?:his|her|their) (?:[\w-]+ )?(?:reasoning|thinking|thoughts|thought process"
    r"|monologue)|(?:reasoning|thoughts|thinking) (?:of|in|behind) (?:the|this|that|a) (?:character|author"
    r"|judge|court|poem|story|novel|book|article|paper|text|passage|detective|committee|protagonist|villain"
    r"|narrator|essay|speech|decision|ruling)",
)
_SELF = r"\b(?:model|assistant|ai|llm|gpt|chatbot|bot)'s\b"

#: Ordinary step-by-step / show-your-work / explain-your-reasoning requests.
_STEP = _alt(
    r"step[- ]by[- ]step|one step at a time|step-wise|stepwise|(?:each|every) step|show (?:all )?(?:your "
    r"|the |"
    r"me the |me your |me every )?(?:work|working|workings|steps|calculations|reasoning|derivation|method)"
    r"|explain (?:your|each|every|how you|why you|the logic|the steps|the reasoning|the method)"
    r"|explain (?:it|that|this) (?:step|in detail)|(?:explain|describe|justify) your (?:\w+ )?(?:answer"
    r"|reasoning"
    r"|thought process|thinking|logic|approach|method|choice|solution|deductions?)|justify (?:your|the|each)"
    r"|justifications? for (?:each|your|the)"
    r"|reason (?:step|through|it out|carefully|about|before)|\breason\b[^.?!\n]*(?:then|before)"
    r"|(?:use|using|with|via|apply|employ|show|write|give|provide|do|include) (?:a |your |the )?(?:\w+ )?"
    r"chain[- ]of[- ]thought|think (?:carefully|logically|it through|through|about this|hard|step)"
    r"|let'?s think|think about this logically|walk (?:me )?through|how (?:did )?you (?:get|got|arrive)"
    r"|break (?:it|this|the problem|this problem) down|break (?:the|this) problem into|work (?:it|this) out"
    r"|work through|intermediate "
    r"(?:results|steps)|(?:step-by-step|detailed|full|complete|worked) (?:solution|derivation|explanation"
    r"|working)"
    r"|worked solution|show (?:all )?working|with full working|your reasoning|reasoning (?:first|before)"
    r"|explain (?:each|every) (?:step|deduction)|each deduction|explanation of your reasoning|(?:include"
    r"|with)"
    r" (?:your|an?) (?:\w+ )?(?:reasoning|explanation)|reasoning along with|explain your answer|explain the "
    r"reasoning|reason about|think about the|your approach first|describe your approach|outline the steps"
    r"|think carefully",
    r"一步一步|一步步|逐步|分步|解题步骤|詳細步驟|详细步骤|解释你的推理|解釋你的推理|推理过程|解题过程",
    r"шаг за шагом|пошагов|по шагам|объясни (?:сво[её] |твоё |твое )?(?:решени|рассужд|ответ)|как ты получил"
    r"|покажи решение|рассуждать",
    r"단계별로|차근차근|풀이 과정|이유를 설명|단계적으로",
    r"ステップバイステップ|段階的に|順を追って|理由も?説明|解き方",
    r"paso a paso|muestra tu trabajo|explica tu (?:razonamiento|respuesta)|explícame (?:paso"
    r"|c[óo]mo (?:se )?resuelv|tu)|passo a passo|mostre os c[áa]lculos"
    r"|explique (?:seu|o seu) racioc[ií]nio|passo dopo passo|ragiona",
    r"schritt für schritt|rechenweg|lösungsweg|erkläre deine",
    r"[ée]tape par [ée]tape|montre ton raisonnement|explique ta r[ée]ponse|chaque [ée]tape|en d[ée]taillant",
    r"خطوة بخطوة|اشرح طريقة|وضّح استدلالك|وضح استدلالك",
    r"từng bước|adım adım|चरण दर चरण|krok po kroku",
)

#: "step by step" about a procedure (install, recipe, directions), not reasoning.
_PROCEDURAL = _alt(
    r"(?:step[- ]by[- ]step|steps?) (?:guide|instructions?|directions|tutorial|recipe|plan|walkthrough"
    r"|process"
    r" for|to (?:install|set ?up|apply|create|build|make|become|configure))|(?:instructions?|directions"
    r"|a guide"
    r"|recipe|tutorial|plan)[^.?!\n]*step[- ]by[- ]step|step[- ]by[- ]step[^.?!\n]*(?:install|set ?up"
    r"|recipe|guide)|walk me through (?:setting|installing|configuring|how to set)",
    r"安装|安裝|教程|инструкци|설치|インストール|instrucciones|anleitung|instalar|installer|installieren"
    r"|تثبيت",
)

#: Cheap pre-filter: a row must mention one of these to be looked at further. It is a superset
#: of every feature above that can push a row out of "none" (tests check the equivalence).
_PREFILTER = _alt(
    # en: reasoning objects, answers, reconstruction ties, concealment, harvest framing, steps
    r"reason|think|thought|chain|\bcot\b|monolog|deliberat|scratch|cognition|inner|internal|hidden|mental"
    r"|rationale|everything you|what went|what was going|<\s*/?\s*(?:think|reasoning|thought|scratchpad)"
    r"|answer|solution|label|output|result|choice|option|gold|textbook|question|problem|here'?s the"
    r"|here is the"
    r"|(?:^|\n)\s*as?\s*[:=]|conclusion|code|correct|ends in|ending in|arriv|connect|mention|\bsay|reveal"
    r"|indicat|\bstat|let on|refer|admit|disclos|hint|as if|as though|own voice|own thoughts|first-person"
    r"|training|fine-?tun|dataset|worked|annotation|distill|step|show|explain|justif|walk|how (?:did )?you"
    r"|break|work|intermediate|deriv|explanation|deduction|outline|approach",
    # zh
    r"推理|思考|思维|思維|想法|思路|思绪|独白|草稿|想|答案|正确|正確|参考|參考|已知|给定|給定|根据|得出|得到"
    r"|导出|推出"
    r"|对应|不要|自己|训练|訓練|数据|數據|步|解释|解釋|过程|過程|推导",
    # ru
    r"рассужд|размышл|мысл|думал|монолог|черновик|цепочк|трейс|ответ|приводит|вед[её]т|не упоминай|как будто"
    r"|обучающ|датасет|шаг|объясни|как ты получил|покажи|решени",
    # ko
    r"추론|사고|생각|독백|정답|답|도달|이어지|이르는|언급하지|직접|스스로|학습|데이터|단계|차근|풀이|이유"
    r"|설명|흔적",
    # ja
    r"推論|思考|考え|独白|答え|正解|至る|つなが|触れず|自分で|学習|データ|ステップ|段階|順を追|理由|解き",
    # es / pt / it
    r"razon|pensa|pensé|pensó|pensou|mon[oó]logo|racioc|ragiona|pensier|respuesta|resposta|risposta|lleva"
    r"|llega"
    r"|justifica|leva a|chega|porta a|sin mencionar|como si|sem mencionar|como se|entrenamiento"
    r"|conjunto de datos"
    r"|treinamento|paso|muestr|mostr|expli|explí|trabajo|c[áa]lculo|passo|interna",
    # de
    r"gedank|überleg|denk|gedacht|reasoning|antwort|lösung|führt|führen|erwähnen|als hättest|als wären"
    r"|trainingsdaten|schritt|rechenweg|erkl|begründ",
    # fr
    r"raisonn|pens[ée]|r[ée]flexion|cheminement|r[ée]ponse|m[èe]ne|sans mentionner|comme si|entra[iî]nement"
    r"|[ée]tape|montre|explique|d[ée]taill|interne",
    # ar
    r"تفكير|فكر|أفكار|افكار|استدلال|حوار|الإجابة|الاجابة|الجواب|تؤدي|يؤدي|تذكر|كأن|خطوة|اشرح|وضح|وضّح|داخلي"
    r"|الحل",
    # vi, tr, hi, pl
    r"suy nghĩ|từng bước|akıl|adım|düşün|सोच|चरण|rozumow|krok|myśl",
)


# (feature name, pattern). Order is the column order of :func:`cot_features`.
_FEATURES: tuple[tuple[str, str], ...] = (
    ("obj", _OBJ),
    ("hidobj", _HIDOBJ),
    ("verbatim", _VERBATIM),
    ("reveal", _REVEAL),
    ("reveal_strong", _REVEAL_STRONG),
    ("you", _YOU),
    ("allobj", _ALLOBJ),
    ("answer_given", _ANSWER_GIVEN),
    ("reason_req", _REASON_REQ),
    ("leads_to", _LEADS_TO),
    ("conceal", _CONCEAL),
    ("jailbreak", _JAILBREAK),
    ("past", _PAST),
    ("thought_verb", _THOUGHT_VERB),
    ("internal", _INTERNAL),
    ("dataset", _DATASET),
    ("no_explain", _NO_EXPLAIN),
    ("topic", _TOPIC),
    ("third_party", _THIRD_PARTY),
    ("self", _SELF),
    ("step", _STEP),
    ("procedural", _PROCEDURAL),
)

#: Evidence terms of the noisy-OR: (weight, features that must all be present). Read it as
#: "this combination alone is worth this much confidence that the prompt exposes reasoning".
_TERMS: tuple[tuple[float, tuple[str, ...]], ...] = (
    # hidden/internal/raw reasoning of *yours*, or asked for with a reveal verb
    (0.8, ("hidobj", "you")),
    (0.7, ("hidobj", "reveal")),
    (0.35, ("hidobj",)),
    # verbatim / unsummarised reasoning
    (0.75, ("verbatim", "obj", "reveal")),
    (0.45, ("verbatim", "obj")),
    # "print / dump / paste your reasoning"
    (0.5, ("reveal_strong", "obj", "you")),
    # the whole trace: every thought, all of your thinking
    (0.6, ("allobj", "you")),
    (0.4, ("allobj", "reveal")),
    # after the fact: what you were thinking (in the last answer)
    (0.35, ("past", "obj", "reveal")),
    (0.5, ("internal", "obj", "reveal")),
    (0.5, ("thought_verb", "verbatim")),
    (0.5, ("thought_verb", "internal")),
    (0.5, ("thought_verb", "reveal_strong")),
    (0.3, ("thought_verb", "past")),
    # reconstruction: answer supplied + write the reasoning (+ tie to that answer / conceal)
    (0.55, ("answer_given", "reason_req")),
    (0.6, ("answer_given", "leads_to")),
    (0.7, ("conceal", "reason_req")),
    (0.45, ("leads_to", "reason_req")),
    (0.5, ("conceal", "answer_given")),
    # explicit harvest framing
    (0.5, ("dataset", "reason_req")),
    (0.3, ("dataset", "obj")),
    # jailbreak framings only add to reasoning evidence
    (0.5, ("jailbreak", "obj", "reveal")),
    (0.3, ("jailbreak", "obj")),
)
#: Multiplier applied to the score of topic / fiction prompts ("what is chain-of-thought prompting?").
_TOPIC_DAMP = 0.35


def _as_string_array(prompts: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(prompts, pa.ChunkedArray):
        prompts = prompts.combine_chunks() if prompts.num_chunks else pa.array([], pa.string())
    if pa.types.is_large_string(prompts.type) or pa.types.is_string_view(prompts.type):
        prompts = prompts.cast(pa.string())
    if not pa.types.is_string(prompts.type):
        raise TypeError(f"prompts must be a string array, got {prompts.type}")
    return prompts


def _match(texts: pa.Array, pattern: str) -> np.ndarray:
    hit = pc.match_substring_regex(texts, pattern)
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)


#: Features computed on every candidate row. Every exposure term contains one of ``_EXPOSE_GATE``
#: (the other features are sub-patterns of ``obj`` or only ever AND-ed with a gate feature),
#: and the step rule starts from ``step``; so the remaining features only run on rows where a
#: gate fired. Tests check that this gives exactly the labels of the eager evaluation.
_EXPOSE_GATE: tuple[str, ...] = ("obj", "answer_given", "leads_to", "conceal", "dataset")
#: Features the step rule (and the damping of the score) needs on step rows as well.
_STEP_NEEDS: tuple[str, ...] = ("procedural", "topic", "no_explain", "reason_req")
#: One regex for "any gate feature": the union of the ``_EXPOSE_GATE`` patterns.
_GATE_UNION = "|".join(dict(_FEATURES)[name] for name in _EXPOSE_GATE)
#: The pre-filter as run on the raw (not lower-cased) prompt.
_PREFILTER_ANY_CASE = "(?i)" + _PREFILTER


def cot_features(texts: pa.Array, *, lazy: bool = True) -> dict[str, np.ndarray]:
    """Boolean feature columns for already lower-cased ``texts``.

    With ``lazy`` (the default) one union regex of the gate features and the step regex run
    on every row; each other feature runs only on the rows where a gate it can combine with
    fired, and is False elsewhere. Labels and scores are identical to ``lazy=False`` (tests
    check it); only the cost differs, because the gates fire on a few percent of rows.
    """
    if not lazy:
        return {name: _match(texts, pat) for name, pat in _FEATURES}
    n = len(texts)
    patterns = dict(_FEATURES)
    expose_gate = _match(texts, _GATE_UNION)
    feat = {"step": _match(texts, patterns["step"])}
    gates = {False: expose_gate, True: expose_gate | feat["step"]}
    subsets: dict[bool, tuple[np.ndarray, pa.Array]] = {}
    for name, pat in _FEATURES:
        if name in feat:
            continue
        wide = name in _STEP_NEEDS
        if wide not in subsets:
            idx = np.flatnonzero(gates[wide])
            subsets[wide] = (idx, texts.take(pa.array(idx, type=pa.int64())))
        idx, sub = subsets[wide]
        col = np.zeros(n, dtype=bool)
        if len(idx):
            col[idx] = _match(sub, pat)
        feat[name] = col
    return feat


def _score(feat: Mapping[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(expose score, step flag) from feature columns: noisy-OR of the evidence terms."""
    miss = np.ones(n, dtype=np.float64)
    for weight, names in _TERMS:
        on = np.ones(n, dtype=bool)
        for name in names:
            on &= feat[name]
        miss *= np.where(on, 1.0 - weight, 1.0)
    score = 1.0 - miss
    score = np.where(feat["topic"], score * _TOPIC_DAMP, score)
    other = feat["third_party"] & ~feat["self"] & ~feat["you"]
    score = np.where(other, score * _TOPIC_DAMP, score)
    score = np.where(feat["no_explain"] & ~feat["obj"], 0.0, score)
    step = feat["step"] & ~(feat["procedural"] & ~_strong_step(feat)) & ~feat["topic"] & ~feat["no_explain"]
    return score, step


def _strong_step(feat: Mapping[str, np.ndarray]) -> np.ndarray:
    # a procedural "step by step guide" is still reasoning when it also asks for reasoning
    strong: np.ndarray = feat["obj"] | feat["reason_req"]
    return strong


def cot_elicitation(prompts: pa.Array | pa.ChunkedArray) -> tuple[pa.StringArray, np.ndarray]:
    """Label each prompt ``expose_reasoning`` / ``step_by_step`` / ``none`` and score exposure.

    Returns the labels (null where the prompt is null) and a float32 array in [0, 1]: the
    confidence that the prompt asks the model to expose or reconstruct its reasoning (0 for
    null prompts). ``expose_reasoning`` wins over ``step_by_step`` when both apply ("show your
    full hidden reasoning step by step" is exposure).
    """
    texts = _as_string_array(prompts)
    n = len(texts)
    score = np.zeros(n, dtype=np.float32)
    code = np.zeros(n, dtype=np.int32)  # index into LABELS
    if n:
        cand = np.flatnonzero(_match(texts, _PREFILTER_ANY_CASE))
        if len(cand):
            sub = pc.utf8_lower(texts.take(pa.array(cand, type=pa.int64())))
            s, step = _score(cot_features(sub), len(cand))
            score[cand] = s.astype(np.float32)
            code[cand] = np.where(s >= THRESHOLD, 2, np.where(step, 1, 0))
    mask = np.asarray(pc.is_null(texts).to_numpy(zero_copy_only=False), dtype=bool)
    score[mask] = 0.0
    labels: pa.StringArray = _LABEL_ARRAY.take(pa.array(code, mask=mask))
    return labels, score
