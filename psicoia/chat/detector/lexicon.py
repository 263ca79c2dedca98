"""
Shared pieces of the crisis patterns: means, heights, third persons, the end of a clause.
"""

from __future__ import annotations

from psicoia.chat.detector.normalize import compile_alternation

END = r"(?= *(\||$))"  # end of the clause or the message
# Verbs and nouns reused below.
WANT = (r"quiero|quisiera|queria|deseo|desearia|necesito|ganas de|pienso en|pensando en"
         r"|pense en|prefiero|preferiria|me gustaria|me encantaria|me apetese|vontade de|quero"
         r"|queria|penso em|pensando em")
PILLS = (r"pastillas|pastilla|remedios|medicamentos|clonasepam|rivotril|ansioliticos"
          r"|comprimidos|remedios|pills|blister|blisters|frasco|veneno")
HIGH = (r"puente|balcon|edifisio|techo|terrasa|ventana|asotea|piso|cornisa|barranca"
         r"|acantilado|ponte|predio|bridge|roof|building|balcony")
THIRD = (r"mi (mejor )?(amiga|amigo|hermana|hermano|hermanita|hermanito|hijo|hija|novio|novia"
          r"|viejo|vieja|mama|papa|madre|padre|abuelo|abuela|tio|tia|primo|prima|pareja|ex"
          r"|vesino|vesina|companero|companera|alumno|alumna|marido|mujer|esposo|esposa|jefe"
          r"|roomie|colega|pana|compa|socio|amigue|crush)|una (amiga|alumna|companera|conosida|chica|vesina)|un (amigo|alumno|pibe"
          r"|chico|companero|conosido|vesino|nene)|alguien (en|de) un|my (best )?(friend"
          r"|sister|brother|son|daughter|mom|mother|dad|father|girlfriend|boyfriend|partner"
          r"|wife|husband|roommate|student)|a (friend|student)|minha (amiga|irma|mae|filha"
          r"|namorada)|meu (amigo|irmao|pai|filho|namorado)|ella|alguien|someone|she|he")
THIRD_ACT = (
    r"se (quiere|queria|va a|iba a|piensa|pensaba|puede) (matar|morir|suisidar|tirar|cortar"
    r"|lastimar|hacer algo|hacer dano|ahorcar|colgar)|se mata|se tira|se corta|se esta cortando"
    r"|se lastima|se quema|se quemo|se (tomo|trago) (un|una|todas|todo|muchas)"
    r"|quiere (morirse|morir|matarse|suisidarse|desaparecer)|(no )?quiere (seguir )?vivir"
    r"|(de )?(matarse|suisidarse|ahorcarse|tirarse|cortarse|morirse)"
    r"|es una carga|estamos mejor sin|estarian mejor sin|carta de despedida|despidiendose"
    r"|se despidio|regalo (todas )?sus|no va a (estar|legar)|no quiere bajar|dise que se tira"
    r"|tiene (cortes|marcas)|brasos cortados|gracias por todo|se haga algo"
    r"|(kill|hurt|cut|cutting|harm) (herself|himself|themselves|his|her)|wants to die"
    r"|vai se matar|quer morrer|se matar|no se despierta mas|despertarse|contrasenas|que cuide (a )?su"
    r"|con el mismo|con ella misma|esta en (la terrasa|el techo)|se (quiere|va a) tirar"
    r"|se (quiere|va a|piensa|queria) quitar la vida|quitarse la vida|amenasa con (matarse|suisidarse|tirarse)"
    r"|se (va a|quiere) pegar un tiro|pegarse un tiro|mensaje de despedida|(tomo|se tomo) muchas pastilas"
    r"|estariamos mejor sin (el|ela)|dejo de (tomar|comer) [^|]{0,25}a proposito|(va a|quiere) saltar"
    r"|took (a bunch of|all|too many|a lot of|a bottle of|all (her|his)) (pils|meds)|plan para (suisidarse|matarse)"
    r"|hablando de (matarse|suisidarse|morirse|quitarse la vida)"
    r"|(no )?va a ser una carga|(nos|me|les) pide perdon|se despide|se despidio de todos"
    r"|(wants|wanted|going|trying) to end (her|his|their) life|talking about (suicide|kiling|dying|ending)"
    r"|(wants|is going|is gonna) to (die|kil (her|him)self)|is suicidal|suicidal"
)

THIRD_SUBJECT = compile_alternation(rf"\b({THIRD})\b")
# How far before a third-party act its subject may be (characters of normalised text).
THIRD_REACH = 200
