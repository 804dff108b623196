"""Built-in frames for legitimate traffic (the hard negatives of MISSION.md).

Each entry is ``(template, capability, cot_elicit)``. Human-facing kinds have many
frames with short and long shapes (pasted text, code) and are later perturbed (casing,
typos, dropped punctuation) by the source; machine-facing kinds (SaaS backends,
benchmark harnesses, coding agents) repeat one template per variant, exactly like an
attacker's automation does, because that is what real integrations look like.
"""

from __future__ import annotations

FD = tuple[str, str, bool]

CHAT_EN: tuple[FD, ...] = (
    ("Can you explain {topic} like I'm {audience}?", "knowledge", False),
    ("explain {topic} in simple terms", "knowledge", False),
    ("What is {topic}?", "knowledge", False),
    ("How does {topic} actually work? I've read a few articles but I'm still confused.", "knowledge", False),
    (
        "I have a presentation tomorrow on {topic}. Can you give me 5 key points I should cover?",
        "knowledge",
        False,
    ),
    ("Give me a short summary of {topic}, maybe 3-4 sentences.", "knowledge", False),
    ("What are the pros and cons of {topic}?", "knowledge", False),
    ("Write an email to {relation} {email_purpose}.", "writing", False),
    ("Can you help me write a polite email to {relation}? I'm {email_purpose}.", "writing", False),
    (
        "draft a short message to {relation} {email_purpose}, keep it professional but friendly",
        "writing",
        False,
    ),
    (
        "Help me write a cover letter for a {job} position. I have 3 years of experience and I'm good with "
        "people.",
        "writing",
        False,
    ),
    ("What should I put in my resume if I want to switch careers to {job}?", "chat", False),
    ("Write a {poem_form} about {poem_topic}.", "writing", False),
    ("write me a funny {poem_form} about {poem_topic} for my friend's birthday card", "writing", False),
    ("Can you give me a recipe for {dish}? I only have about an hour.", "chat", False),
    ("How do I make {dish} without an oven?", "chat", False),
    ("What can I cook with chicken, rice, spinach and some leftover cheese?", "chat", False),
    ("I'm going to {city} for {duration}. What should I see?", "chat", False),
    ("Plan a {duration} itinerary for {city} on a budget.", "chat", False),
    ("What's the best time of year to visit {country}?", "chat", False),
    ("I want to {hobby}. Where do I start?", "chat", False),
    ("How long does it realistically take to {hobby} if I practice 30 minutes a day?", "chat", False),
    ("Which {product} should I buy for under $300? I mostly need it for work.", "chat", False),
    ("Is it worth buying a refurbished {product}?", "chat", False),
    (
        "I've had {health_topic} for about a week. What could be causing it and when should I see a doctor?",
        "chat",
        False,
    ),
    ("Any tips for dealing with {health_topic}?", "chat", False),
    ("Summarize this for me:\n\n{passage}", "writing", False),
    ("Can you make this paragraph sound more professional?\n\n{draft_text}", "writing", False),
    ("fix the grammar: {draft_text}", "writing", False),
    ('Proofread this please: "{draft_text}"', "writing", False),
    ("Translate to {language_name}: {sentence}", "writing", False),
    ('How do you say "{sentence}" in {language_name}?', "writing", False),
    ("What are the main arguments in this text?\n\n{passage}", "reasoning", False),
    ("Turn this into bullet points:\n{passage}", "writing", False),
    ("How do I {code_howto} in {prog_lang}?", "coding", False),
    ("quick {prog_lang} question: how do I {code_howto}?", "coding", False),
    ("What's the difference between {concept_pair}?", "knowledge", False),
    ("Give me 10 name ideas for a {industry} startup.", "writing", False),
    ("Write a short product description for a {product}.", "writing", False),
    ("Write a LinkedIn post announcing that I started a new job as a {job}.", "writing", False),
    ("What are some good interview questions to ask when hiring a {job}?", "chat", False),
    ("How do I prepare for a {job} interview?", "chat", False),
    ("My {relation_short} keeps taking credit for my work. How should I handle it?", "chat", False),
    ("How can I stop procrastinating? I work from home and get distracted constantly.", "chat", False),
    ("What are some fun things to do on a rainy weekend with kids?", "chat", False),
    ("Suggest a name for my new {pet}.", "chat", False),
    ("How often should I feed {pet_the}?", "chat", False),
    ("Tell me a joke about {poem_topic}.", "chat", False),
    ("Can you recommend some books similar to {book}?", "chat", False),
    ("What is the main theme of {book}?", "knowledge", False),
    ("Who won the {sport_event} in {year}?", "knowledge", False),
    ("How many calories are in a serving of {dish}?", "knowledge", False),
    ("What's a good way to save money each month? I make about ${salary} a year.", "chat", False),
    ("Should I pay off my credit card or invest in an index fund first?", "chat", False),
    ("Explain the difference between a Roth IRA and a traditional IRA.", "knowledge", False),
    ("If I invest ${amount} at {rate}% a year, how much will I have in {years} years?", "math", False),
    ("What is {pct}% of {amount}?", "math", False),
    ("How many {unit_conv}?", "math", False),
    ("Can you help me with this math problem? {problem}", "math", False),
    ("I don't get how to do this one, can you show me step by step? {problem}", "math", True),
    ("Write a short story about {story_prompt}.", "writing", False),
    ("Give me an opening line for a novel about {story_prompt}.", "writing", False),
    ("Write a toast for {occasion}.", "writing", False),
    ("Help me write a speech for {occasion}. It should be about 2 minutes long.", "writing", False),
    ("What should I get my {gift_for} for their birthday? They like {gift_hobby}.", "chat", False),
    ("Is it safe to {safety_q}?", "chat", False),
    ("What's the etiquette for {etiquette}?", "chat", False),
    ("Rewrite this to be shorter:\n\n{passage}", "writing", False),
    ("Explain this error: {error_msg}", "coding", False),
    ("Compare {concept_pair}.", "knowledge", False),
    ("Why is {why_q}?", "knowledge", False),
    (
        "Can you give me a workout plan for {duration}? I can only go to the gym 3 times a week.",
        "chat",
        False,
    ),
    ("What are the symptoms of {health_topic}?", "knowledge", False),
    ("Write a thank-you note to {relation} for {thanks_for}.", "writing", False),
    ("Create a weekly meal plan for a family of four with a small budget.", "chat", False),
    ('What\'s a good response when someone says "{smalltalk}"?', "chat", False),
    ("Help me come up with a good argument for why {debate}.", "reasoning", False),
    ("Is it true that {myth}?", "knowledge", False),
    ("What are the rules of {game}?", "knowledge", False),
    ("How do I get better at {game}?", "chat", False),
    ("Write an Instagram caption for a photo of {photo}.", "writing", False),
    ("What questions should I ask {relation} in our one-on-one meeting?", "chat", False),
    ("I need a catchy slogan for a {industry} company.", "writing", False),
    ("Can you create a study schedule for my {field} exam in {duration}?", "chat", False),
    ("What's the history of {topic}?", "knowledge", False),
    ("hi", "chat", False),
    ("What can you help me with?", "chat", False),
)

CHAT_FOREIGN: dict[str, tuple[str, ...]] = {
    "zh": (
        "帮我写一封请假邮件，家里有事需要请三天假。",
        "怎么提高英语口语？有什么好方法吗？",
        "用通俗的话解释一下什么是量子计算。",
        "推荐几本适合初学者的Python书。",
        "北京三日游怎么安排比较好？",
        "帮我把这段话翻译成英文：我们下周一开会讨论项目进度。",
        "工作压力太大了，怎么缓解？",
        "写一首关于秋天的短诗。",
        "通货膨胀对普通人有什么影响？",
        "给我讲讲二战爆发的主要原因。",
        "租房的时候要注意哪些坑？",
        "帮我润色一下这段自我介绍：我叫李明，毕业于计算机专业，喜欢编程和打篮球。",
        "晚上总是失眠怎么办？",
        "红烧肉怎么做才好吃？",
        "简单介绍一下区块链技术。",
        "给我的猫起个可爱的名字。",
    ),
    "ru": (
        "Как написать хорошее резюме для первой работы?",
        "Объясни простыми словами, что такое инфляция.",
        "Помоги составить письмо начальнику с просьбой об отпуске.",
        "Что посмотреть в Санкт-Петербурге за два дня?",
        "Как быстро выучить английский язык?",
        "Напиши короткое поздравление с днём рождения для коллеги.",
        "Почему небо голубое?",
        "Посоветуй хорошие книги по саморазвитию.",
        "Как приготовить борщ?",
        "Что лучше: ипотека или аренда квартиры?",
        "Переведи на английский: «Спасибо за быстрый ответ».",
        "Как перестать откладывать дела на потом?",
    ),
    "ko": (
        "영어 회화 실력을 늘리는 좋은 방법이 있을까요?",
        "김치찌개 맛있게 끓이는 법 알려줘.",
        "인플레이션이 뭔지 쉽게 설명해줘.",
        "자기소개서 첫 문장을 어떻게 쓰면 좋을까요?",
        "제주도 2박 3일 여행 코스 추천해줘.",
        "회사 상사에게 보낼 휴가 요청 메일 써줘.",
        "잠이 안 올 때 어떻게 해야 해?",
        "파이썬 공부를 처음 시작하려는데 뭐부터 하면 좋을까?",
        "블록체인이 뭐야?",
        "스트레스 해소하는 방법 좀 알려줘.",
    ),
    "es": (
        "¿Cómo puedo mejorar mi inglés rápidamente?",
        "Escríbeme un correo para pedirle a mi jefe un día libre el viernes.",
        "Explícame qué es la inflación de forma sencilla.",
        "¿Qué visitar en Madrid en tres días?",
        "Dame una receta fácil de tortilla de patatas.",
        "¿Cuál es la diferencia entre ser y estar?",
        "Ayúdame a escribir una carta de presentación para un puesto de enfermera.",
        "¿Por qué el cielo es azul?",
        "Recomiéndame libros parecidos a Cien años de soledad.",
        "¿Cómo puedo ahorrar dinero cada mes?",
        "Escribe un poema corto sobre el mar.",
        "Traduce al inglés: «Nos vemos mañana a las diez».",
    ),
    "ja": (
        "英語のリスニング力を上げるにはどうすればいいですか？",
        "上司に休暇をお願いするメールを書いてください。",
        "インフレとは何か、簡単に説明してください。",
        "京都で二日間観光するならどこがおすすめ？",
        "カレーをおいしく作るコツを教えて。",
        "プログラミングを独学で始めるには何から始めればいい？",
        "なぜ空は青いのですか？",
        "夜なかなか眠れません。どうしたらいいですか？",
        "秋についての短い詩を書いて。",
    ),
    "de": (
        "Wie kann ich mein Englisch schnell verbessern?",
        "Schreib mir eine kurze E-Mail an meinen Vermieter wegen der kaputten Heizung.",
        "Erklär mir einfach, was Inflation ist.",
        "Was sollte ich in Berlin an einem Wochenende unbedingt sehen?",
        "Gib mir ein einfaches Rezept für Apfelstrudel.",
        "Wie schreibe ich ein gutes Anschreiben für eine Bewerbung?",
        "Warum ist der Himmel blau?",
        "Was ist der Unterschied zwischen einer GmbH und einer AG?",
    ),
    "fr": (
        "Comment améliorer rapidement mon anglais ?",
        "Écris un e-mail à mon propriétaire pour signaler une fuite d'eau.",
        "Explique-moi simplement ce qu'est l'inflation.",
        "Que visiter à Lyon en deux jours ?",
        "Donne-moi une recette facile de crêpes.",
        "Aide-moi à rédiger une lettre de motivation pour un stage.",
        "Pourquoi le ciel est-il bleu ?",
        "Quels livres me conseilles-tu pour apprendre à programmer ?",
    ),
    "pt": (
        "Como posso melhorar meu inglês rapidamente?",
        "Escreve um e-mail para o meu chefe pedindo folga na sexta.",
        "Explica de forma simples o que é inflação.",
        "O que visitar em Lisboa em três dias?",
        "Me dá uma receita fácil de pão de queijo.",
        "Como faço para economizar dinheiro todo mês?",
        "Por que o céu é azul?",
        "Me ajuda a escrever uma carta de apresentação para vaga de analista de dados.",
    ),
}

FOLLOWUP_EN: tuple[FD, ...] = (
    ("can you make it shorter?", "writing", False),
    ("Make it more formal.", "writing", False),
    ("make it sound less robotic", "writing", False),
    ("What about {topic}?", "knowledge", False),
    ("Thanks! How long does that usually take?", "chat", False),
    ("Can you explain that last part again?", "chat", False),
    ("That didn't work, I get {error_msg}", "coding", False),
    ("ok now translate it to {language_name}", "writing", False),
    ("Give me 3 more examples.", "chat", False),
    ("why?", "chat", False),
    ("Could you put that in a table?", "chat", False),
    ("I'm not sure I understand. Can you give an example?", "chat", False),
    ("Great, thanks. What if I only have {duration}?", "chat", False),
    ("No, I meant for {audience}.", "chat", False),
    ("Can you add a sentence about {topic}?", "writing", False),
    ("Perfect. Now write a subject line for it.", "writing", False),
    ("what would you recommend instead?", "chat", False),
    ("Is there a cheaper option?", "chat", False),
    ("Can you do the same thing in {prog_lang}?", "coding", False),
    ("it still says {error_msg}", "coding", False),
    ("Now add comments to the code.", "coding", False),
    ("How would I test this?", "coding", False),
    ("Are you sure? I read somewhere that {myth}.", "knowledge", False),
    ("Can you cite a source for that?", "knowledge", False),
    ("shorter pls", "writing", False),
    ("That's great. Can you make it rhyme?", "writing", False),
    ("And what's the answer if the numbers are doubled?", "math", False),
    ("Can you show me how you got that?", "math", True),
    ("Explain it step by step, I'm still lost.", "math", True),
    ("What are the risks?", "chat", False),
    ("Summarize everything we discussed in 5 bullet points.", "writing", False),
    ("ok thanks!", "chat", False),
    ("Rewrite your previous answer, but start every sentence with the letter {letter}.", "writing", False),
    ("Can you elaborate on point {point_no}?", "chat", False),
)

FOLLOWUP_FOREIGN: dict[str, tuple[str, ...]] = {
    "zh": (
        "能再简短一点吗？",
        "可以举个例子吗？",
        "为什么？",
        "还是不太懂，能再解释一下吗？",
        "谢谢！那大概需要多长时间？",
        "用表格整理一下。",
    ),
    "ru": (
        "Можно покороче?",
        "Приведи пример, пожалуйста.",
        "А почему?",
        "Спасибо! А сколько это займёт времени?",
        "Сделай это в виде таблицы.",
    ),
    "ko": ("좀 더 짧게 써줄 수 있어?", "예시를 들어줄래?", "왜 그런 거야?", "고마워! 시간은 얼마나 걸려?"),
    "es": (
        "¿Puedes hacerlo más corto?",
        "¿Me das un ejemplo?",
        "¿Por qué?",
        "Gracias, ¿y cuánto tiempo tarda eso?",
        "Ponlo en una tabla.",
    ),
    "ja": (
        "もう少し短くできますか？",
        "例を挙げてもらえますか？",
        "なぜですか？",
        "ありがとう！どれくらい時間がかかりますか？",
    ),
    "de": (
        "Kannst du das kürzer machen?",
        "Kannst du ein Beispiel geben?",
        "Warum?",
        "Danke! Wie lange dauert das ungefähr?",
    ),
    "fr": (
        "Tu peux faire plus court ?",
        "Tu peux donner un exemple ?",
        "Pourquoi ?",
        "Merci ! Ça prend combien de temps ?",
    ),
    "pt": ("Pode deixar mais curto?", "Pode dar um exemplo?", "Por quê?", "Valeu! Quanto tempo isso leva?"),
}

CODING_EN: tuple[FD, ...] = (
    ("why am I getting {error_msg}?", "coding", False),
    ("I'm getting this error in {prog_lang}: {error_msg}\n\nany idea what causes it?", "coding", False),
    ("How do I {code_howto} in {prog_lang}?", "coding", False),
    ("What's the best way to {code_howto} in {prog_lang}? I want it to be fast.", "coding", False),
    ("what's the difference between {code_cmp}?", "coding", False),
    (
        "Can you review this code and tell me what could be improved?\n\n```\n{code_snippet}\n```",
        "coding",
        False,
    ),
    (
        "This code doesn't work as expected:\n\n```\n{code_snippet}\n```\n\nWhat am I doing wrong?",
        "coding",
        False,
    ),
    ("```\n{code_snippet}\n```\nthis throws {error_msg}, why", "coding", False),
    ("Explain what this code does line by line:\n\n{code_snippet}", "coding", False),
    ("Write a regex that matches {regex_target}.", "coding", False),
    ("Write a SQL query that returns {sql_goal}.", "coding", False),
    ("I have a table {sql_table}. How do I get {sql_goal}?", "coding", False),
    ("How can I make this faster? It takes minutes on a 1GB file.\n\n{code_snippet}", "coding", False),
    ("Convert this to {prog_lang}:\n\n{code_snippet}", "coding", False),
    ("Write unit tests for this function:\n\n{code_snippet}", "coding", False),
    ("Is it bad practice to {bad_practice}?", "coding", False),
    ("How do I set up {dev_tool} for a {prog_lang} project?", "coding", False),
    ("{dev_tool} keeps failing with `{error_msg}` after I upgraded. How do I fix it?", "coding", False),
    ("What's a good folder structure for a {app_kind} in {prog_lang}?", "coding", False),
    ("How do I deploy a {app_kind} to {cloud}?", "coding", False),
    ("Write a {prog_lang} script that {script_goal}.", "coding", False),
    ("Can you write a bash one-liner to {script_goal}?", "coding", False),
    ("git question: how do I {git_goal}?", "coding", False),
    ("What does `{code_expr}` mean in {prog_lang}?", "coding", False),
    ("Should I use {code_cmp} for this? I'm building a {app_kind}.", "coding", False),
    ("Explain {cs_concept} with a code example.", "coding", False),
    ("How do I fix a memory leak in my {app_kind}? Memory grows by ~100MB an hour.", "coding", False),
    ("Write a function that {code_task_desc}.", "coding", False),
    ("my {prog_lang} program works locally but fails in Docker with {error_msg}", "coding", False),
)

CODING_FOREIGN: dict[str, tuple[str, ...]] = {
    "zh": (
        "Python里怎么读取CSV文件？",
        "这个报错是什么意思：IndexError: list index out of range",
        "帮我写一个SQL，查出每个部门工资最高的员工。",
        "React的useEffect为什么会执行两次？",
        "Java和Go哪个更适合写后端？",
        "git怎么撤销最后一次提交？",
    ),
    "ru": (
        "Как в Python прочитать JSON из файла?",
        "Почему возникает ошибка NullPointerException в Java?",
        "Напиши SQL-запрос, который выводит топ-5 клиентов по сумме заказов.",
        "Как откатить последний коммит в git?",
    ),
    "ko": (
        "파이썬에서 리스트 중복 제거하는 방법 알려줘.",
        "이 에러가 무슨 뜻이야? TypeError: 'NoneType' object is not subscriptable",
        "자바스크립트에서 async/await 설명해줘.",
    ),
    "es": (
        "¿Cómo leo un archivo CSV en Python?",
        "¿Qué significa este error? KeyError: 'id'",
        "Escribe una consulta SQL que devuelva los 10 productos más vendidos.",
        "¿Cómo deshago el último commit en git?",
    ),
    "ja": (
        "Pythonで辞書を値でソートする方法は？",
        "このエラーの意味を教えてください：ModuleNotFoundError: No module named 'requests'",
    ),
    "de": (
        "Wie lese ich in Python eine CSV-Datei ein?",
        "Was bedeutet dieser Fehler: IndexError: list index out of range?",
    ),
    "fr": (
        "Comment lire un fichier CSV en Python ?",
        "Que signifie cette erreur : TypeError: Cannot read properties of undefined ?",
    ),
    "pt": ("Como leio um arquivo CSV em Python?", "O que significa esse erro: KeyError: 'id'?"),
}

# A coding agent's turns: tool results, file content, test output, terse instructions.
AGENT_STEP_EN: tuple[FD, ...] = (
    ("{agent_task}", "agentic", False),
    ("{agent_task}. Run the tests when you're done.", "agentic", False),
    ("<tool_result>\n{test_output}\n</tool_result>", "agentic", False),
    ("<tool_result>\n{cmd_output}\n</tool_result>", "agentic", False),
    ("Tool output:\n```\n{test_output}\n```", "agentic", False),
    ("Here is the content of {file_path}:\n\n```\n{code_snippet}\n```", "agentic", False),
    ('<file path="{file_path}">\n{code_snippet}\n</file>', "agentic", False),
    ("continue", "agentic", False),
    ("Continue.", "agentic", False),
    ("The tests still fail:\n\n{test_output}\n\nCan you fix it?", "agentic", False),
    ("Command exited with code 1:\n{cmd_output}", "agentic", False),
    ("looks good, now also update the README", "agentic", False),
    ("undo that change, it broke {file_path}", "agentic", False),
    ('Search results for "{search_term}":\n{grep_output}', "agentic", False),
    ("The user approved the edit to {file_path}. Proceed.", "agentic", False),
    ("{lint_output}", "agentic", False),
    ("Don't touch the tests, just fix the implementation in {file_path}.", "agentic", False),
    ("Also handle the case where {edge_case}.", "agentic", False),
)

AGENT_STEP_FOREIGN: dict[str, tuple[str, ...]] = {
    "zh": ("继续", "测试还是没通过，再看看。", "帮我把这个函数重构一下，顺便加上单元测试。"),
    "ru": ("продолжай", "Тесты всё ещё падают, посмотри ещё раз."),
    "ko": ("계속해", "테스트가 아직 실패해. 다시 확인해줘."),
    "es": ("continúa", "Los tests siguen fallando, revísalo otra vez."),
    "ja": ("続けて", "テストがまだ失敗しています。もう一度確認してください。"),
    "de": ("weiter", "Die Tests schlagen immer noch fehl, schau bitte nochmal."),
    "fr": ("continue", "Les tests échouent toujours, regarde à nouveau."),
    "pt": ("continua", "Os testes ainda estão falhando, dá uma olhada de novo."),
}

# Benchmark harness prompt formats (one per variant, as an eval run uses one format all day).
BENCHMARK_FRAMES: tuple[FD, ...] = (
    ("Question: {problem}\nAnswer: Let's think step by step.", "math", True),
    ("{problem}\nLet's think step by step.", "math", True),
    (
        "Solve the following math problem step by step. The last line of your response should be of the form "
        '"Answer: $ANSWER" (without quotes) where $ANSWER is the answer to the problem.\n\n{problem}\n\n'
        'Remember to put your answer on its own line after "Answer:", and you do not need to use a \\boxed '
        "command.",
        "math",
        True,
    ),
    ("{problem}\nPlease reason step by step, and put your final answer within \\boxed{}.", "math", True),
    (
        "Q: There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they "
        "are done, "
        "there will be 21 trees. How many trees did the grove workers plant today?\nA: There are 15 trees "
        "originally. "
        "Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The "
        "answer is 6.\n\n"
        "Q: If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking "
        "lot?\n"
        "A: There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.\n\n"
        "Q: Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left "
        "in total?\n"
        "A: Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After "
        "eating 35, "
        "they had 74 - 35 = 39. The answer is 39.\n\nQ: {problem}\nA:",
        "math",
        True,
    ),
    ("Q: {problem}\nA:", "math", False),
    (
        "Answer the following question. Think step by step and give the final answer as a number after "
        "'####'.\n\n"
        "{problem}",
        "math",
        True,
    ),
    ("{problem}\nAnswer with only the final number.", "math", False),
    (
        "Q: {problem}\nA: Let's work this out in a step by step way to be sure we have the right answer.",
        "math",
        True,
    ),
)

# Class assignments: (rewordings students paste, capability, whether the brief asks for steps)
ASSIGNMENTS: tuple[tuple[tuple[str, ...], str, bool], ...] = (
    (
        (
            "Write a Python function that checks whether a string is a palindrome, ignoring spaces and "
            "punctuation.",
            "write a python function to check if a string is a palindrome (ignore spaces and punctuation)",
            "How do I write a palindrome checker in Python that ignores spaces and punctuation?",
        ),
        "coding",
        False,
    ),
    (
        (
            "Implement binary search in Java and explain its time complexity.",
            "implement binary search in java + explain the time complexity",
            "Can you help me implement binary search in Java? We also need to explain the big O.",
        ),
        "coding",
        False,
    ),
    (
        (
            "Explain the difference between mitosis and meiosis.",
            "what is the difference between mitosis and meiosis",
            "Compare mitosis and meiosis (phases, number of daughter cells, genetic variation).",
        ),
        "knowledge",
        False,
    ),
    (
        (
            "Find the derivative of f(x) = x^3 ln(x) and determine where f is increasing.",
            "derivative of x^3 ln x and where is it increasing?",
            "f(x) = x³·ln(x). Find f'(x) and the intervals where f is increasing.",
        ),
        "math",
        True,
    ),
    (
        (
            "Write a 500-word essay on the causes of World War I.",
            "essay on the causes of WW1, 500 words",
            "I need to write about the main causes of World War 1 (militarism, alliances, imperialism, "
            "nationalism).",
        ),
        "writing",
        False,
    ),
    (
        (
            "Explain how an increase in interest rates affects inflation and unemployment.",
            "how do higher interest rates affect inflation and unemployment?",
            "Using the Phillips curve, explain the effect of raising interest rates on inflation and "
            "unemployment.",
        ),
        "reasoning",
        False,
    ),
    (
        (
            "A ball is thrown upward at 20 m/s from a height of 5 m. How long until it hits the ground? (g "
            "= 9.8 m/s^2)",
            "ball thrown up at 20 m/s from 5 m high, when does it hit the ground? g=9.8",
            "Projectile problem: v0 = 20 m/s upward, initial height 5 m, g = 9.8 m/s². Find the time to hit "
            "the ground.",
        ),
        "math",
        True,
    ),
    (
        (
            "Write a SQL query that returns the top 3 customers by total order amount.",
            "sql query for top 3 customers by total order amount",
            "Given tables customers(id, name) and orders(id, customer_id, amount), return the 3 customers "
            "with the highest "
            "total order amount.",
        ),
        "coding",
        False,
    ),
    (
        (
            "Describe the main functions of the three branches of the US government.",
            "what do the 3 branches of the US government do",
            "Explain the roles of the legislative, executive and judicial branches and give one check each "
            "has on the "
            "others.",
        ),
        "knowledge",
        False,
    ),
    (
        (
            "Compute the mean, median and standard deviation of: 4, 8, 15, 16, 23, 42.",
            "mean median and standard deviation of 4, 8, 15, 16, 23, 42",
            "Find the mean, the median and the (sample) standard deviation of the data set 4, 8, 15, 16, "
            "23, 42.",
        ),
        "math",
        True,
    ),
    (
        (
            "Explain the difference between a process and a thread, with an example.",
            "process vs thread difference with example",
            "What is the difference between processes and threads in an operating system? Give an example "
            "of each.",
        ),
        "coding",
        False,
    ),
    (
        (
            "Analyze the symbolism of the green light in The Great Gatsby.",
            "what does the green light symbolize in the great gatsby",
            "Discuss what the green light represents in The Great Gatsby and how its meaning changes in the "
            "novel.",
        ),
        "writing",
        False,
    ),
    (
        (
            "Solve the system of equations: 2x + 3y = 12 and x - y = 1.",
            "solve 2x+3y=12, x-y=1",
            "Solve for x and y: 2x + 3y = 12, x − y = 1. Show your work.",
        ),
        "math",
        True,
    ),
    (
        (
            "Compare utilitarianism and Kantian ethics using the trolley problem.",
            "utilitarianism vs kantian ethics trolley problem",
            "How would a utilitarian and a Kantian each answer the trolley problem, and why?",
        ),
        "reasoning",
        False,
    ),
    (
        (
            "Implement a singly linked list in C with insert, delete and print functions.",
            "linked list in C with insert delete and print",
            "Write a C program implementing a linked list (insert at head, delete by value, print list).",
        ),
        "coding",
        False,
    ),
    (
        (
            "What were the main causes and consequences of the Industrial Revolution?",
            "causes and consequences of the industrial revolution",
            "Explain why the Industrial Revolution started in Britain and its social and economic "
            "consequences.",
        ),
        "knowledge",
        False,
    ),
)

ASSIGNMENT_WRAPPERS: tuple[tuple[str, bool], ...] = (
    ("{q}", False),
    ("{q}", False),
    ("{q} explain pls", False),
    ("can someone help me with this homework question? {q}", False),
    ("I have this assignment due tonight: {q}", False),
    ("How do I answer this: {q}", False),
    ("{q}\n\nPlease explain step by step, my teacher wants us to show our working.", True),
    ("hi, {q}", False),
    ('Question from my course: "{q}" I don\'t even know where to start.', False),
    ("{q} (for a college class)", False),
)

ASSIGNMENT_FOREIGN_WRAPPERS: dict[str, tuple[tuple[str, bool], ...]] = {
    "es": (("Tengo esta tarea para mañana: {q}", False), ("¿Me ayudas con esto? {q}", False)),
    "zh": (("老师布置的作业：{q} 怎么做？", False), ("请一步一步解释：{q}", True)),
    "ko": (("이 과제 좀 도와줘: {q}", False),),
    "pt": (("Tenho esse trabalho pra entregar hoje: {q}", False),),
    "de": (("Ich habe diese Hausaufgabe: {q}", False),),
    "fr": (("J'ai ce devoir à rendre demain : {q}", False),),
}

# SaaS products: (product label, user template, capability, system prompt)
SAAS_PRODUCTS: tuple[tuple[str, str, str, str], ...] = (
    (
        "support-triage",
        "{ticket}",
        "reasoning",
        "You are a support ticket triage assistant for {brand}. Classify the customer's message into "
        "exactly one of: "
        "billing, technical_issue, account_access, shipping, feature_request, other. Also rate urgency from "
        "1 to 3. "
        'Respond only with JSON: {"category": ..., "urgency": ...}.',
    ),
    (
        "product-copy",
        "Product name: {product_name}\nCategory: {product_cat}\nKey features: {features}\nTone: {tone}\n"
        "Length: {n_words} words",
        "writing",
        "You write product descriptions for {brand}'s online store. Use the tone requested, never invent "
        "features, "
        "and do not mention competitors. Output plain text without a title.",
    ),
    (
        "email-summary",
        "Summarize this email thread in 3 bullet points for a busy reader:\n\n{email_thread}",
        "writing",
        "You are the summarization engine of {brand} Mail. Be concise and neutral. Never include email "
        "addresses.",
    ),
    (
        "review-sentiment",
        "Review: {review}\n\nSentiment (positive, negative or neutral):",
        "reasoning",
        "Classify the sentiment of product reviews for {brand}. Answer with one word.",
    ),
    (
        "ui-translation",
        "Translate into {target_lang}. Keep placeholders like {{name}} unchanged.\n\n{ui_string}",
        "writing",
        "You are a professional software localizer working on {brand}'s app. Preserve formatting and "
        "placeholders.",
    ),
    (
        "meeting-actions",
        "Transcript:\n{meeting_transcript}\n\nList the action items with owner and due date as JSON.",
        "writing",
        "You extract action items from meeting transcripts for {brand}. Output a JSON array of objects with "
        "keys "
        '"task", "owner", "due". Use null when unknown.',
    ),
    (
        "text-to-sql",
        "Schema:\n{db_schema}\n\nQuestion: {bi_question}\n\nSQL:",
        "coding",
        "You translate business questions into PostgreSQL for {brand} Analytics. Output only the SQL query.",
    ),
    (
        "moderation",
        "{ugc_comment}",
        "reasoning",
        "You are {brand}'s comment moderation model. Decide whether the comment violates the community "
        "guidelines "
        "(harassment, spam, hate, self-harm). Reply with ALLOW or REMOVE and a reason code.",
    ),
    (
        "listing-writer",
        "Write a listing for: {bedrooms} bed, {bathrooms} bath {home_type} in {city}. Features: "
        "{home_features}.",
        "writing",
        "You write real estate listings for {brand}. Be warm, accurate and under 150 words. Comply with "
        "fair housing "
        "rules: never describe the ideal buyer.",
    ),
    (
        "support-reply",
        "Customer: {customer_msg}\n\nDraft a reply.",
        "writing",
        "You are {brand}'s customer support assistant. Be friendly and concise, offer a concrete next step, "
        "and "
        "never promise refunds without an order number.",
    ),
    (
        "resume-screen",
        "Job: {job}\n\nCandidate summary:\n{resume}\n\nRate the fit from 1 to 5 and explain briefly.",
        "reasoning",
        "You help recruiters at {brand} screen candidates. Judge only job-relevant qualifications.",
    ),
    (
        "contract-extract",
        "Extract the termination and renewal terms from this clause:\n\n{contract_clause}",
        "reasoning",
        "You are a contract analysis assistant for {brand} Legal. Quote the relevant text and summarize it.",
    ),
)

SAAS_BRANDS = (
    "Acme",
    "Northwind",
    "Brightdesk",
    "Lumio",
    "Parcelly",
    "Zentro",
    "Helpwise",
    "Quillmark",
    "Stackr",
    "Orbitly",
    "Tidepool",
    "Nimbus CRM",
    "Fernway",
    "Kiteworks",
    "Homely",
    "Plumline",
)

# Enterprise synthetic-data contracts (one template per variant, slots vary).
SYNTHETIC_FRAMES: tuple[FD, ...] = (
    (
        "Generate {k} diverse, realistic customer support conversations for a {industry} company. Each "
        "conversation "
        'should have 4-8 turns. Return a JSON array where each element has "turns" (list of '
        '{"role", "text"}) '
        'and "intent".',
        "data_generation",
        False,
    ),
    (
        "Generate {k} product reviews for {product_cat} with a star rating from 1 to 5. Vary the length, "
        "tone and "
        'writing style. Output JSON lines with fields "rating" and "review".',
        "data_generation",
        False,
    ),
    (
        "Read the passage and write {k} question-answer pairs that can be answered from it. Output JSON with "
        '"question" and "answer".\n\nPassage:\n{passage}',
        "data_generation",
        False,
    ),
    (
        "Generate {k} natural-language questions with the corresponding SQL query for this schema. Output "
        "JSON with "
        '"question" and "sql".\n\n{db_schema}',
        "data_generation",
        False,
    ),
    (
        "Write {k} paraphrases of the following sentence, varying vocabulary and structure but keeping the "
        "meaning: "
        '"{sentence}"',
        "data_generation",
        False,
    ),
    (
        "Create {k} sentences that mention people, organizations and locations, and annotate every entity "
        "with BIO "
        "tags. Domain: {industry}.",
        "data_generation",
        False,
    ),
    (
        "Generate {k} realistic but entirely fictional customer profiles for testing a {industry} CRM. "
        "Fields: name, "
        "email, city, signup_date, plan, lifetime_value. Output CSV with a header row.",
        "data_generation",
        False,
    ),
    (
        'Generate {k} user utterances for the intent "{intent}" in a {industry} virtual assistant. Vary '
        "tone, length "
        "and phrasing; include a few with typos.",
        "data_generation",
        False,
    ),
    (
        'Write {k} examples of {email_kind} emails to train a classifier. Output JSON with "subject", "body" '
        'and "label".',
        "data_generation",
        False,
    ),
    (
        "Generate {k} grade {grade} math word problems about {math_topic}, each with a worked solution and "
        "final "
        'answer. Output JSON with "problem", "solution" and "answer".',
        "data_generation",
        False,
    ),
)

EXTRA_VOCAB: dict[str, tuple[str, ...]] = {
    "relation_short": ("coworker", "manager", "roommate", "teammate", "sister", "friend"),
    "pet": ("puppy", "kitten", "hamster", "rabbit", "goldfish", "parrot"),
    "pet_the": ("a 3 month old puppy", "an adult cat", "a guinea pig", "my senior dog", "a kitten"),
    "book": (
        "1984",
        "Pride and Prejudice",
        "The Great Gatsby",
        "Dune",
        "The Hobbit",
        "Sapiens",
        "Atomic Habits",
        "The Midnight Library",
        "Project Hail Mary",
        "Normal People",
        "The Alchemist",
        "Educated",
    ),
    "sport_event": (
        "World Cup",
        "Super Bowl",
        "Tour de France",
        "NBA Finals",
        "Champions League",
        "Wimbledon",
    ),
    "year": ("2010", "2014", "2016", "2018", "2019", "2021", "2022"),
    "salary": ("45,000", "60,000", "75,000", "90,000", "120,000", "38,000"),
    "amount": ("1,000", "5,000", "10,000", "250", "20,000", "500"),
    "rate": ("3", "4", "5", "6", "7", "8"),
    "years": ("5", "10", "15", "20", "30"),
    "pct": ("15", "20", "7.5", "12", "35", "8"),
    "unit_conv": (
        "ounces are in 3 pounds",
        "cups are in a gallon",
        "feet are in 2.5 miles",
        "milliliters are in 1.5 liters",
        "teaspoons are in a tablespoon",
        "inches are in 10 yards",
        "kilometers are in 26.2 miles",
        "grams are in 12 ounces",
        "minutes are in 3.5 hours",
        "square feet are in an acre",
    ),
    "story_prompt": (
        "a robot who wants to be a chef",
        "a lighthouse keeper who finds a message in a bottle",
        "two strangers stuck in an elevator",
        "a town where it never stops raining",
        "a kid who can talk to plants",
        "the last bookstore on Mars",
        "a dragon afraid of heights",
    ),
    "occasion": (
        "my best friend's wedding",
        "my dad's 60th birthday",
        "a coworker's retirement party",
        "our team's end-of-year dinner",
        "my sister's graduation",
    ),
    "gift_for": ("dad", "girlfriend", "boss", "10 year old nephew", "mom", "best friend"),
    "gift_hobby": ("cooking", "hiking", "video games", "gardening", "photography", "reading"),
    "safety_q": (
        "eat raw cookie dough",
        "leave a phone charging overnight",
        "drink tap water in Mexico City",
        "give my dog grapes",
        "use expired sunscreen",
        "run every day",
    ),
    "etiquette": (
        "tipping in Japan",
        "splitting the bill on a first date",
        "replying to a wedding invitation late",
        "bringing a gift to a dinner party",
        "using a phone in a restaurant",
    ),
    "why_q": (
        "the ocean salty",
        "the sky blue",
        "ice slippery",
        "yawning contagious",
        "the Moon always showing the same face",
        "bread rising",
    ),
    "thanks_for": ("the birthday gift", "covering my shift", "the great mentorship this year", "hosting us"),
    "smalltalk": ("so what do you do?", "how was your weekend?", "you look tired", "long time no see"),
    "debate": (
        "school uniforms should be required",
        "remote work is better for productivity",
        "homework should be banned",
        "cities should ban cars downtown",
        "college should be free",
    ),
    "myth": (
        "we only use 10% of our brains",
        "goldfish have a 3 second memory",
        "cracking your knuckles causes arthritis",
        "lightning never strikes the same place twice",
        "sugar makes kids hyper",
    ),
    "game": ("chess", "poker", "Catan", "bridge", "mahjong", "Go", "Monopoly"),
    "photo": (
        "a sunset at the beach",
        "my dog in the snow",
        "brunch with friends",
        "a mountain hike",
        "my new apartment",
    ),
    "letter": ("A", "B", "S", "T"),
    "point_no": ("2", "3", "4"),
    "code_expr": (
        "*args, **kwargs",
        "=>",
        "?.",
        "::",
        "&mut self",
        "async def",
        "yield",
        "lambda x: x[1]",
        "!!",
        "...rest",
    ),
    "sql_goal": (
        "the number of orders per customer in the last 30 days",
        "the second highest salary",
        "all users who never placed an order",
        "monthly revenue for 2023",
        "duplicate email addresses",
        "the top 5 products by units sold",
    ),
    "sql_table": (
        "orders(id, customer_id, amount, created_at)",
        "employees(id, name, dept_id, salary)",
        "events(user_id, event_type, ts)",
        "products(id, name, price, category)",
    ),
    "bad_practice": (
        "use global variables",
        "catch all exceptions",
        "commit directly to main",
        "store passwords in environment variables",
        "use SELECT * in production",
    ),
    "dev_tool": (
        "ESLint",
        "Docker",
        "GitHub Actions",
        "pytest",
        "webpack",
        "poetry",
        "Kubernetes",
        "Terraform",
        "pre-commit",
        "VS Code debugger",
    ),
    "app_kind": (
        "REST API",
        "React app",
        "CLI tool",
        "Discord bot",
        "data pipeline",
        "Flask app",
        "microservice",
        "mobile app backend",
    ),
    "cloud": ("AWS", "Google Cloud", "Azure", "Heroku", "Fly.io", "a DigitalOcean droplet", "Vercel"),
    "script_goal": (
        "renames all .jpeg files to .jpg",
        "finds the 10 largest files in a directory",
        "backs up a Postgres database every night",
        "counts lines of code per file type",
        "downloads all images from a web page",
        "merges multiple CSV files into one",
    ),
    "git_goal": (
        "undo the last commit but keep the changes",
        "squash my last 3 commits",
        "delete a remote branch",
        "resolve a merge conflict",
        "change the message of the last commit",
    ),
    "code_task_desc": (
        "returns the second largest number in a list",
        "checks if a string is a valid email",
        "converts a nested dictionary into a flat one with dotted keys",
        "chunks a list into pieces of size n",
        "computes a moving average",
    ),
    "agent_task": (
        "Add pagination to the /users endpoint",
        "Fix the flaky test in tests/test_scheduler.py",
        "Refactor the auth middleware to use the new TokenService",
        "Add a --dry-run flag to the CLI",
        "Upgrade the project from Pydantic v1 to v2",
        "Add retry with exponential backoff to the HTTP client",
        "Write tests for utils/date_parse.py",
        "Make the settings page responsive on mobile",
        "Remove the deprecated v1 billing code",
        "Add structured logging to the worker",
        "Fix the N+1 query in the orders list view",
        "Add a dark mode toggle to the navbar",
        "Implement CSV export for the reports page",
        "Migrate the config from YAML to TOML",
        "Add input validation to the signup form",
        "Speed up the slow integration test suite",
    ),
    "test_output": (
        "============================= test session starts ==============================\ncollected 48 "
        "items\n\n"
        "tests/test_api.py ......F.....\n\n=================================== FAILURES "
        "===================================\n"
        "_____________________________ test_list_users_page_2 _____________________________\n"
        "    assert resp.json()['next'] is None\nE   AssertionError: assert '/users?page=3' is None\n"
        "=========================== 1 failed, 47 passed in 3.21s ===========================",
        "FAIL src/components/Navbar.test.tsx\n  ● Navbar › toggles dark mode\n\n    "
        "expect(received).toBe(expected)\n\n"
        '    Expected: "dark"\n    Received: "light"\n\nTests: 1 failed, 23 passed, 24 total',
        "--- FAIL: TestRetryBackoff (0.02s)\n    client_test.go:88: expected 3 attempts, got 1\nFAIL\n"
        "FAIL\tgithub.com/acme/api/client\t0.413s",
        "running 12 tests\ntest parser::tests::parses_empty ... ok\ntest parser::tests::rejects_bad_utf8 "
        "... FAILED\n\n"
        "failures:\n---- parser::tests::rejects_bad_utf8 stdout ----\nthread panicked at 'called "
        "`Result::unwrap()` "
        "on an `Err` value'\n\ntest result: FAILED. 11 passed; 1 failed",
        "........................................................ [100%]\n56 passed in 4.87s",
        "E   ModuleNotFoundError: No module named 'app.services.token_service'\n"
        "ERROR tests/test_auth.py - ModuleNotFoundError\n!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during "
        "collection",
    ),
    "cmd_output": (
        "$ npm run build\n\n> web@1.4.0 build\n> tsc && vite build\n\nsrc/api/client.ts:41:7 - error "
        "TS2322: Type "
        "'string | undefined' is not assignable to type 'string'.\n\nFound 1 error.",
        "$ git status\nOn branch feature/pagination\nChanges not staged for commit:\n\tmodified:   "
        "app/routes/users.py\n"
        "\tmodified:   tests/test_api.py",
        '$ python -m mypy src\nsrc/worker/jobs.py:112: error: Item "None" of "Optional[Job]" has no '
        "attribute "
        '"id"  [union-attr]\nFound 1 error in 1 file (checked 64 source files)',
        "$ docker compose up db\n[+] Running 1/0\n ✔ Container api-db-1  Created\nAttaching to db-1\n"
        "db-1  | LOG:  database system is ready to accept connections",
        "$ ls src/\napi  cli.py  config.py  models  services  utils  worker",
        "$ cargo build\n   Compiling parser v0.3.1\nerror[E0382]: borrow of moved value: `buf`\n  --> "
        "src/lib.rs:57:20",
    ),
    "file_path": (
        "app/routes/users.py",
        "src/components/Navbar.tsx",
        "client/retry.go",
        "src/parser/mod.rs",
        "app/middleware/auth.py",
        "tests/test_scheduler.py",
        "src/utils/date_parse.py",
        "web/src/pages/Settings.vue",
        "config/settings.toml",
        "internal/billing/v1/handler.go",
    ),
    "search_term": ("TokenService", "get_user_by_id", "DEFAULT_TIMEOUT", "useTheme", "legacy_billing"),
    "grep_output": (
        "app/middleware/auth.py:14:from app.services.token_service import TokenService\n"
        "app/middleware/auth.py:38:    svc = TokenService(settings.secret)\n"
        "tests/test_auth.py:9:from app.services.token_service import TokenService",
        "src/theme.ts:3:export function useTheme() {\nsrc/components/Navbar.tsx:5:import { useTheme } from "
        "'../theme'",
        "client/http.go:12:const DEFAULT_TIMEOUT = 10 * time.Second\nclient/retry.go:30:\tctx, cancel := "
        "context.WithTimeout(ctx, DEFAULT_TIMEOUT)",
    ),
    "lint_output": (
        "src/api/users.py:23:1: F401 'json' imported but unused\nsrc/api/users.py:88:101: E501 line too "
        "long (112 > 100 characters)\nFound 2 errors.",
        "✖ 3 problems (3 errors, 0 warnings)\n  12:7  error  'data' is assigned a value but never used  "
        "no-unused-vars",
    ),
    "edge_case": (
        "the list is empty",
        "the token has expired",
        "the file does not exist",
        "page is 0 or negative",
        "the user has no email",
    ),
    "ticket_id": tuple(str(100000 + i * 7919 % 899999) for i in range(40)),
    "tone": ("friendly", "luxury", "playful", "professional", "minimal", "technical"),
    "n_words": ("50", "80", "100", "120", "150"),
    "features": (
        "waterproof, 30-hour battery, USB-C charging",
        "organic cotton, machine washable, 6 colors",
        "stainless steel, dishwasher safe, 1.7 L capacity",
        "adjustable height, memory foam, 5-year warranty",
        "Bluetooth 5.3, noise cancelling, foldable",
        "BPA-free, leak-proof lid, keeps drinks cold 24h",
    ),
    "target_lang": ("German", "French", "Spanish", "Japanese", "Brazilian Portuguese", "Korean", "Italian"),
    "ui_string": (
        "Your subscription will renew on {{date}}.",
        "Hi {{name}}, you have {{count}} new messages.",
        "Are you sure you want to delete this project? This cannot be undone.",
        "Upload failed. Check your connection and try again.",
        "Invite your team to collaborate",
        "Password must be at least 12 characters long.",
        "Free shipping on orders over {{amount}}",
    ),
    "db_schema": (
        "customers(id, name, country, created_at)\norders(id, customer_id, total, status, created_at)",
        "employees(id, name, department_id, salary, hire_date)\ndepartments(id, name)",
        "events(id, user_id, type, ts)\nusers(id, plan, signup_ts)",
        "products(id, name, category, price)\norder_items(order_id, product_id, qty)",
    ),
    "bi_question": (
        "What was total revenue by country last quarter?",
        "Which department has the highest average salary?",
        "How many users signed up each week in March?",
        "Top 10 products by units sold in 2024?",
        "What share of orders were cancelled last month?",
        "Average order value per customer?",
    ),
    "bedrooms": ("1", "2", "3", "4"),
    "bathrooms": ("1", "1.5", "2", "3"),
    "home_type": ("condo", "townhouse", "single-family home", "apartment", "bungalow"),
    "home_features": (
        "renovated kitchen, hardwood floors, south-facing balcony",
        "garage, large backyard, new roof",
        "walk-in closet, in-unit laundry, gym in building",
        "fireplace, open plan, close to schools",
    ),
    "intent": (
        "cancel_subscription",
        "track_order",
        "reset_password",
        "change_address",
        "report_fraud",
        "book_appointment",
        "check_balance",
    ),
    "email_kind": ("phishing", "legitimate invoice", "newsletter", "spam promotion", "meeting request"),
    "grade": ("3", "4", "5", "6", "7", "8"),
    "k": ("10", "10", "20", "25", "50", "5", "15", "30"),
}

# Variable content that SaaS backends feed into their template, built from fragments at
# construction so thousands of distinct inputs exist (real product traffic rarely repeats).
TICKET_PARTS: dict[str, tuple[str, ...]] = {
    "greet": ("Hi,", "Hello,", "Hi there,", "", "Dear support,", "hey", "Good morning,"),
    "issue": (
        "I was charged twice for my subscription this month.",
        "I can't log into my account since yesterday.",
        "My order #{order_no} hasn't arrived and the tracking hasn't updated in a week.",
        "The app crashes every time I try to upload a photo.",
        "I want to change the email on my account.",
        "Your last update deleted all my saved settings.",
        "The invoice shows the wrong company name.",
        "I never received the password reset email.",
        "It would be great if you could add an export to Excel.",
        "The package arrived damaged.",
        "My discount code isn't being applied at checkout.",
        "I'd like to cancel my plan but I can't find the option.",
    ),
    "detail": (
        "I've already tried clearing my cache.",
        "This is the third time I'm writing about this.",
        "I'm on the Pro plan.",
        "I'm using the iPhone app, latest version.",
        "Please help asap, it's urgent.",
        "Screenshot attached.",
        "",
        "",
        "My account email is the one I'm writing from.",
    ),
    "close": ("Thanks", "Thank you!", "Regards, {first}", "", "Cheers", "Please fix this."),
}
TICKETS_FOREIGN: dict[str, tuple[str, ...]] = {
    "es": (
        "Hola, me han cobrado dos veces este mes. ¿Pueden devolverme el dinero?",
        "No puedo iniciar sesión en mi cuenta desde ayer.",
        "Mi pedido no ha llegado y el seguimiento no se actualiza.",
    ),
    "de": (
        "Hallo, mir wurde diesen Monat doppelt abgebucht.",
        "Ich kann mich seit gestern nicht mehr einloggen.",
        "Meine Bestellung ist beschädigt angekommen.",
    ),
    "fr": (
        "Bonjour, j'ai été débité deux fois ce mois-ci.",
        "Je n'arrive plus à me connecter à mon compte.",
        "Ma commande n'est toujours pas arrivée.",
    ),
    "pt": (
        "Olá, fui cobrado duas vezes este mês.",
        "Não consigo entrar na minha conta desde ontem.",
        "Meu pedido chegou danificado.",
    ),
    "ja": (
        "今月二重に請求されています。確認してください。",
        "昨日からログインできません。",
        "注文した商品がまだ届いていません。",
    ),
    "zh": (
        "你好，这个月被重复扣费了，请帮我退款。",
        "从昨天开始就登录不了账号。",
        "我的订单一直没到，物流也没有更新。",
    ),
    "ko": ("이번 달에 결제가 두 번 됐어요. 환불해 주세요.", "어제부터 로그인이 안 됩니다."),
    "ru": (
        "Здравствуйте, с меня дважды списали оплату в этом месяце.",
        "Не могу войти в аккаунт со вчерашнего дня.",
    ),
}
REVIEW_PARTS: dict[str, tuple[str, ...]] = {
    "open": (
        "Bought this for my daughter.",
        "Second one I've owned.",
        "Used it every day for a month.",
        "",
        "Honestly not sure what to think.",
        "Five stars!",
        "Don't waste your money.",
    ),
    "body": (
        "Works exactly as described and the battery lasts forever.",
        "Stopped working after two weeks.",
        "Looks cheaper than in the photos but does the job.",
        "Setup took 5 minutes, super easy.",
        "The customer service was great when I had an issue.",
        "Way too loud for an apartment.",
        "Fits perfectly and the material feels premium.",
        "Arrived late and the box was crushed.",
    ),
    "close": ("Would recommend.", "Returning it.", "", "Good value for the price.", "Meh.", "Love it!"),
}
EMAIL_PARTS: dict[str, tuple[str, ...]] = {
    "a": (
        "From: {first} ({dept})\nSubject: Q3 planning\n\nHi team, can we move the planning session to "
        "Thursday? "
        "I still need the numbers from finance.",
        "From: {first}\nSubject: Re: vendor contract\n\nLegal reviewed the draft and flagged the liability "
        "clause. "
        "We need a decision by Friday.",
        "From: {first}\nSubject: Offsite\n\nThe venue can host 40 people on the 12th. Catering quotes "
        "attached.",
        "From: {first}\nSubject: Bug in release 2.3\n\nCustomers report that exports time out for large "
        "accounts. Support has 14 tickets so far.",
    ),
    "b": (
        "\n\n---\nFrom: {first2}\nThursday works for me, but I'll join remotely.",
        "\n\n---\nFrom: {first2}\nCan we push back? I'd rather cap liability at 12 months of fees.",
        "\n\n---\nFrom: {first2}\nLet's go with the second quote, it includes vegetarian options.",
        "\n\n---\nFrom: {first2}\nEngineering is on it; a hotfix should ship tomorrow.",
        "",
    ),
}
MEETING_LINES = (
    "{first}: Let's start with the launch timeline.",
    "{first2}: Design is done, but QA needs another week.",
    "{first}: Can you own the QA plan, {first2}? Ideally by Friday.",
    "{first2}: Sure. I'll also loop in support.",
    "{first}: Marketing wants the blog post draft by the 15th.",
    "{first2}: I'll ask Priya to write it.",
    "{first}: Any blockers?",
    "{first2}: We still don't have the pricing approved.",
)
UGC_COMMENTS = (
    "This is the best tutorial I've found, thank you!",
    "lol this guy has no idea what he's talking about",
    "Check out my channel for free giveaways!!! link in bio",
    "I disagree, the second method is faster.",
    "You people are idiots",
    "Where did you buy that jacket?",
    "First!",
    "Great video but the audio is low.",
    "Buy cheap followers at best-followers dot com",
    "This helped me pass my exam, thanks a lot",
)
CUSTOMER_MESSAGES = (
    "Hi, I ordered a blue one but got a red one. What do I do?",
    "Can I change my delivery address? Order 48213.",
    "Do you ship to Canada?",
    "My promo code SPRING20 isn't working.",
    "How do I cancel my subscription?",
    "The zipper broke after one week.",
    "When will the large size be back in stock?",
    "I was charged but never got a confirmation email.",
)
RESUMES = (
    "5 years as a backend engineer (Python, Postgres, AWS). Led migration to microservices. BSc Computer "
    "Science.",
    "Recent graduate in marketing, internship at a digital agency, strong social media portfolio.",
    "Registered nurse with 8 years in emergency care, charge nurse for 3 years, BLS and ACLS certified.",
    "Self-taught front-end developer, 2 years freelancing, React and TypeScript, no degree.",
    "Accountant, CPA, 10 years in audit at a Big Four firm, experience with SAP and IFRS.",
    "Project manager, PMP, led 12 construction projects up to $20M, fluent in Spanish.",
)
CONTRACT_CLAUSES = (
    "12.1 This Agreement shall commence on the Effective Date and continue for an initial term of twelve "
    "(12) "
    "months, after which it shall automatically renew for successive one-year terms unless either party "
    "gives "
    "written notice of non-renewal at least sixty (60) days before the end of the then-current term.",
    "9. Termination. Either party may terminate this Agreement for convenience upon thirty (30) days' "
    "written "
    "notice. Either party may terminate immediately if the other party materially breaches and fails to cure "
    "within fifteen (15) days of notice.",
    "The subscription renews monthly. Customer may cancel at any time via the dashboard; cancellation takes "
    "effect at the end of the current billing period and no refunds are given for partial months.",
)
