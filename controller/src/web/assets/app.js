// heatctl technician page: live station status from the controller's JSON API and SSE stream.
// Plain JavaScript, no framework, no network beyond this controller. Served embedded in heatctl.
'use strict';

(() => {
  // ---------------------------------------------------------------- dictionary
  // Every label the page shows, by key, in both languages. Functions take arguments.
  const DICT = {
    en: {
      'conn.connecting': 'connecting', 'conn.open': 'live', 'conn.closed': 'disconnected, retrying',
      last_update: 'Last update', station_clock: 'Station clock',
      'read_only.title': 'Read-only',
      'read_only.text': 'no write token is configured on this controller, so settings cannot be changed from this page.',
      'sec.station': 'Station', 'sec.why': 'Why: what moves the setpoint', 'sec.curve': 'Heating curve',
      'sec.trends': 'Trends', 'sec.rooms': 'Rooms', 'sec.alarms': 'Alarms',
      'sec.field': 'Field devices and links', 'sec.platform': 'Platform link', 'sec.settings': 'Settings',
      'sec.audit': 'Audit log (newest first)',
      'sec.balance': 'Balancing advice', 'bal.group': 'Riser / building', 'bal.verdict': 'Verdict',
      'bal.flow_ratio': 'Flow ratio', 'bal.kv': 'Balancing valve kv', 'bal.confidence': 'Confidence',
      'bal.none': 'No advice yet.', 'bal.computed': 'Computed',
      'f.outdoor_c': 'Outdoor (used)', 'f.damped_outdoor_c': 'damped', 'f.composite_outdoor_c': 'Composite outdoor',
      'f.setpoint_c': 'Supply setpoint', 'f.curve_c': 'curve', 'f.t2_supply_c': 'Secondary supply',
      'f.deviation_k': 'vs setpoint', 'f.t2_return_c': 'Secondary return', 'f.t1_return_c': 'primary return',
      'f.t1_supply_c': 'Primary supply', 'f.valve1_cmd_pct': 'Primary valve command', 'f.valve1_pos_pct': 'feedback',
      'f.power1_kw': 'Heat meter power', 'f.flow1_m3h': 'flow', 'f.energy1_kwh': 'heat meter energy', 'f.mode': 'Mode', 'f.t_out_c': 'Outdoor sensor',
      'f.base_shift_k': 'Operator shift (in force)', 'f.curve_shift_k': 'Curve shift setting',
      'f.demand_shift_k': 'Room demand shift', 'f.valve_demand_shift_k': 'Household valve shift',
      'f.room_target_c': 'Room target', 'f.demand_enabled': 'Room demand correction',
      'f.valve1_manual_pct': 'Manual valve position',
      'mode.auto': 'Auto', 'mode.off': 'Off', 'mode.manual': 'Manual',
      heating_on: 'heating on', heating_off: 'heating off', on: 'on', off: 'off', yes: 'yes', no: 'no', none: 'none',
      'why.active_limiter': 'Limiter in force', 'why.supervisor': 'Safety supervisor',
      'why.outdoor_source': 'Outdoor temperature from', 'why.fallbacks': 'Fallbacks in force',
      'why.invalid_signals': 'Signals not used', 'why.rooms': 'Room signal',
      'why.all_valid': 'all signals valid', 'why.no_fallback': 'none',
      'why.chain.curve': (o) => `Heating curve at ${o} outdoor`,
      'why.chain.curve_no_outdoor': 'Heating curve',
      'why.chain.base': 'Operator curve shift', 'why.chain.demand': 'Room demand correction',
      'why.chain.valve_demand': 'Household valve trim and respond', 'why.chain.before': 'Curve with shifts',
      'why.chain.setpoint': 'Setpoint in force', 'why.chain.off': 'Heating off: no setpoint',
      'why.sum.setpoint': (sp, curve, out) => `The supply setpoint is ${sp}: the curve gives ${curve}${out ? ` at ${out} outdoor` : ''}`,
      'why.sum.shift': (k) => `, shifts add ${k}`,
      'why.sum.limiter': (name, k) => `, and the ${name} moves it by ${k}`,
      'why.sum.no_limiter': ', and no limiter acts',
      'why.sum.off': 'Heating is off (summer cut-off or mode off): the valve goes to its safe position.',
      'why.sum.supervisor': (s) => ` The safety supervisor overrides the valve: ${s}.`,
      'why.sum.invalid': (n) => ` ${n} signal(s) not used, see below.`,
      'why.quorum': (u, e) => `${u} of ${e} room nodes used, quorum met`,
      'why.no_quorum': (u, e) => `${u} of ${e} room nodes used, quorum NOT met: demand correction decays`,
      'why.not_connected': 'not connected', 'why.age': (a) => `age ${a}`,
      'lim.return1': 'primary return limiter', 'lim.return_difference': 'return difference limiter',
      'lim.power': 'power/flow limiter', 'lim.setback': 'schedule setback', 'lim.boost': 'boost after setback',
      'lim.rate': 'setpoint rate limiter', 'lim.clamp': 'supply min/max clamp', 'lim.summer': 'summer cut-off',
      'sup.hold_on_sensor_loss': 'valve held (supply sensor briefly lost)',
      'sup.safe_position': 'valve at its safe position', 'sup.frost': 'frost protection: valve opened to its minimum',
      'sup.over_temperature_cut': 'over-temperature: valve closed', 'sup.none': 'not acting',
      'src.measured': 'the outdoor sensor', 'src.held': 'the last good value (sensor lost)',
      'src.fallback': 'the fixed fallback value (sensor lost too long)',
      'rej.missing': 'not read', 'rej.invalid': 'marked invalid by the field device', 'rej.stale': 'stale (too old)',
      'rej.out_of_range': 'out of range', 'rej.stuck': 'stuck (unchanged too long)', 'rej.jump': 'jump (changed too fast)',
      'rej.not_valid': 'not valid',
      'sig.t_out_c': 'outdoor', 'sig.t1_supply_c': 'primary supply', 'sig.t1_return_c': 'primary return',
      'sig.t2_supply_c': 'secondary supply', 'sig.t2_return_c': 'secondary return', 'sig.power1_kw': 'heat meter power',
      'sig.flow1_m3h': 'heat meter flow', 'sig.valve1_pos_pct': 'primary valve feedback', 'sig.energy1_kwh': 'heat meter energy',
      'curve.curve': 'curve', 'curve.shifted': 'curve with shift', 'curve.limits': 'supply min/max',
      'curve.point': 'operating point (setpoint)', 'curve.supply': 'measured supply',
      'curve.x': 'outdoor °C', 'curve.y': 'supply °C', 'curve.none': 'no curve data',
      'trend.reset': 'Reset zoom', 'trend.hint': 'Wheel to zoom, drag to select a span.',
      'trend.temps': 'Temperatures', 'trend.valve': 'Primary valve', 'trend.shift': 'Demand shift',
      'tr.outdoor_c': 'outdoor', 'tr.outdoor_damped_c': 'outdoor damped', 'tr.setpoint_c': 'setpoint',
      'tr.t2_supply_c': 'supply', 'tr.t2_return_c': 'return', 'tr.t1_return_c': 'primary return',
      'tr.valve1_cmd_pct': 'valve command', 'tr.rooms_p10_c': 'rooms P10', 'tr.rooms_median_c': 'rooms median',
      'tr.demand_shift_k': 'demand shift', 'trend.none': 'no trend data yet',
      'r.percentile_c': 'Low percentile (P10)', 'r.median_c': 'Median', 'r.min_c': 'Coldest sensed home',
      'r.used': 'Used / expected', 'r.at_or_above': 'At or above comfort floor', 'r.floor': 'floor',
      'r.id': 'Node', 'r.building': 'Building', 'r.position': 'Position', 'r.value_c': 'Reading', 'r.age_s': 'Age',
      'r.state': 'State', 'r.valve_cmd_pct': 'Valve cmd', 'r.valve_pos_pct': 'Valve pos', 'r.none': 'no room nodes',
      'st.used': 'used', 'st.stale': 'stale', 'st.invalid': 'invalid', 'st.outlier': 'outlier',
      'st.excluded': 'excluded', 'st.vacant': 'vacant', 'st.no_reading': 'no reading', 'st.missing': 'no reading',
      'st.out_of_range': 'out of range', 'st.stuck': 'stuck', 'st.jump': 'jump',
      'st.suspect_cold': 'suspect (cold)', 'st.suspect': 'suspect',
      'pos.top': 'top floor', 'pos.ground': 'ground floor', 'pos.end': 'end flat', 'pos.middle': 'middle',
      'pos.top_end': 'top floor, end', 'pos.ground_end': 'ground floor, end',
      'al.active': 'Active', 'al.recent': 'Recent (cleared while this page was open)', 'al.code': 'Code',
      'al.text': 'Alarm', 'al.since': 'Since', 'al.cleared': 'Cleared', 'al.none': 'no active alarm',
      'al.none_recent': 'none',
      'd.link': 'Link', 'd.health': 'Health', 'd.devices': 'Devices', 'd.requests': 'Requests', 'd.errors': 'Errors',
      'd.last_ok': 'Last answer', 'd.devices_all': 'All devices', 'd.lost': 'not answering', 'd.device': 'Device',
      'd.timeouts': 'Timeouts', 'd.latency': 'Latency', 'd.ok': 'answering', 'd.comm_lost': 'not answering',
      'd.not_connected': 'never answered', 'd.write_failed': 'write failed', 'd.ago': (a) => `${a} ago`,
      'p.connected': 'Connected', 'p.backlog': 'Backlog (records)', 'p.dropped': 'Dropped (records)',
      'p.last_ack': 'Last acknowledged', 'p.broker': 'Broker', 'p.last_error': 'Last error',
      'clock.unsynced': 'system clock not synchronised', 'footer.config': 'configuration', 'footer.uptime': 'running for',
      'settings.read_only': 'Read-only: this page cannot change settings.',
      'settings.token': 'Write token', 'settings.token_hint': 'kept only in this browser tab',
      'settings.apply': 'Apply', 'settings.current': 'now',
      'set.curve_shift_k': 'Curve shift', 'set.room_target_c': 'Room target', 'set.operating_mode': 'Mode',
      'set.valve1_manual_pct': 'Manual valve position', 'set.demand_enabled': 'Room demand correction',
      'settings.accepted': (n, o, v) => `Accepted: ${n} ${o} → ${v}`,
      'settings.refused': (n, r) => `Refused: ${n}: ${r}`,
      'settings.sending': 'sending…', 'settings.no_token': 'enter the write token first',
      'settings.http': (c) => `HTTP ${c}`,
      'a.time': 'Time', 'a.source': 'Source', 'a.client': 'Client', 'a.what': 'What', 'a.change': 'Old → new',
      'a.result': 'Result', 'a.reason': 'Reason', 'a.none': 'no entries', 'res.accepted': 'accepted', 'res.refused': 'refused',
      footer_api: 'JSON API', 'footer.api': 'JSON API',
      'err.load': (w) => `Cannot load ${w} from the controller.`,
    },
    'zh-CN': {
      'conn.connecting': '正在连接', 'conn.open': '实时', 'conn.closed': '连接断开,正在重试',
      last_update: '最后更新', station_clock: '站点时钟',
      'read_only.title': '只读',
      'read_only.text': '本控制器未配置写入令牌,不能在此页面修改设定。',
      'sec.station': '换热站', 'sec.why': '原因:哪些因素在改变供水设定值', 'sec.curve': '供热曲线',
      'sec.trends': '趋势', 'sec.rooms': '室温', 'sec.alarms': '报警',
      'sec.field': '现场设备与链路', 'sec.platform': '平台连接', 'sec.settings': '设定',
      'sec.audit': '操作记录(最新在前)',
      'sec.balance': '水力平衡建议', 'bal.group': '立管 / 楼栋', 'bal.verdict': '结论',
      'bal.flow_ratio': '流量比', 'bal.kv': '平衡阀 kv', 'bal.confidence': '置信度',
      'bal.none': '暂无建议。', 'bal.computed': '计算时间',
      'f.outdoor_c': '室外温度(采用)', 'f.damped_outdoor_c': '衰减后', 'f.composite_outdoor_c': '综合室外温度',
      'f.setpoint_c': '二次供水设定值', 'f.curve_c': '曲线值', 'f.t2_supply_c': '二次供水温度',
      'f.deviation_k': '与设定值之差', 'f.t2_return_c': '二次回水温度', 'f.t1_return_c': '一次回水',
      'f.t1_supply_c': '一次供水温度', 'f.valve1_cmd_pct': '一次阀门指令', 'f.valve1_pos_pct': '反馈',
      'f.power1_kw': '热量表功率', 'f.flow1_m3h': '流量', 'f.energy1_kwh': '热量表累计热量', 'f.mode': '运行模式', 'f.t_out_c': '室外传感器',
      'f.base_shift_k': '运行人员平移(生效)', 'f.curve_shift_k': '曲线平移设定',
      'f.demand_shift_k': '室温需求修正', 'f.valve_demand_shift_k': '户阀修正',
      'f.room_target_c': '室温目标', 'f.demand_enabled': '室温需求修正',
      'f.valve1_manual_pct': '手动阀位',
      'mode.auto': '自动', 'mode.off': '关闭', 'mode.manual': '手动',
      heating_on: '供暖中', heating_off: '停止供暖', on: '开', off: '关', yes: '是', no: '否', none: '无',
      'why.active_limiter': '生效的限制器', 'why.supervisor': '安全监控',
      'why.outdoor_source': '室外温度来源', 'why.fallbacks': '生效的替代值',
      'why.invalid_signals': '未采用的信号', 'why.rooms': '室温信号',
      'why.all_valid': '全部信号有效', 'why.no_fallback': '无',
      'why.chain.curve': (o) => `室外 ${o} 时的供热曲线值`,
      'why.chain.curve_no_outdoor': '供热曲线值',
      'why.chain.base': '运行人员曲线平移', 'why.chain.demand': '室温需求修正',
      'why.chain.valve_demand': '户阀开度修正', 'why.chain.before': '平移后的曲线值',
      'why.chain.setpoint': '生效的设定值', 'why.chain.off': '停止供暖:无设定值',
      'why.sum.setpoint': (sp, curve, out) => `供水设定值为 ${sp}:${out ? `室外 ${out} 时` : ''}曲线值为 ${curve}`,
      'why.sum.shift': (k) => `,各项平移合计 ${k}`,
      'why.sum.limiter': (name, k) => `,${name}使其改变 ${k}`,
      'why.sum.no_limiter': ',没有限制器动作',
      'why.sum.off': '停止供暖(夏季停暖或模式为关闭):阀门处于安全位置。',
      'why.sum.supervisor': (s) => ` 安全监控接管阀门:${s}。`,
      'why.sum.invalid': (n) => ` 有 ${n} 个信号未被采用,见下方。`,
      'why.quorum': (u, e) => `采用 ${u} / ${e} 个室温节点,满足最少数量`,
      'why.no_quorum': (u, e) => `采用 ${u} / ${e} 个室温节点,不满足最少数量:室温修正逐渐衰减`,
      'why.not_connected': '未接入', 'why.age': (a) => `已 ${a}`,
      'lim.return1': '一次回水温度限制', 'lim.return_difference': '回水温差限制',
      'lim.power': '功率/流量限制', 'lim.setback': '时段降温', 'lim.boost': '降温后加速升温',
      'lim.rate': '设定值变化率限制', 'lim.clamp': '供水温度上下限', 'lim.summer': '夏季停暖',
      'sup.hold_on_sensor_loss': '阀门保持(二次供水传感器短时丢失)',
      'sup.safe_position': '阀门处于安全位置', 'sup.frost': '防冻保护:阀门开到最小开度',
      'sup.over_temperature_cut': '超温:阀门关闭', 'sup.none': '未动作',
      'src.measured': '室外温度传感器', 'src.held': '上次有效值(传感器丢失)',
      'src.fallback': '固定替代值(传感器丢失过久)',
      'rej.missing': '未读取', 'rej.invalid': '现场设备标记无效', 'rej.stale': '数据过期',
      'rej.out_of_range': '超出范围', 'rej.stuck': '数值卡滞(长时间不变)', 'rej.jump': '数值跳变(变化过快)',
      'rej.not_valid': '无效',
      'sig.t_out_c': '室外温度', 'sig.t1_supply_c': '一次供水温度', 'sig.t1_return_c': '一次回水温度',
      'sig.t2_supply_c': '二次供水温度', 'sig.t2_return_c': '二次回水温度', 'sig.power1_kw': '热量表功率',
      'sig.flow1_m3h': '热量表流量', 'sig.valve1_pos_pct': '一次阀门反馈', 'sig.energy1_kwh': '热量表累计热量',
      'curve.curve': '曲线', 'curve.shifted': '平移后的曲线', 'curve.limits': '供水上下限',
      'curve.point': '运行点(设定值)', 'curve.supply': '实测供水',
      'curve.x': '室外 °C', 'curve.y': '供水 °C', 'curve.none': '无曲线数据',
      'trend.reset': '复位缩放', 'trend.hint': '滚轮缩放,拖动选择时段。',
      'trend.temps': '温度', 'trend.valve': '一次阀门', 'trend.shift': '需求修正',
      'tr.outdoor_c': '室外', 'tr.outdoor_damped_c': '室外(衰减)', 'tr.setpoint_c': '设定值',
      'tr.t2_supply_c': '供水', 'tr.t2_return_c': '回水', 'tr.t1_return_c': '一次回水',
      'tr.valve1_cmd_pct': '阀门指令', 'tr.rooms_p10_c': '室温 P10', 'tr.rooms_median_c': '室温中位数',
      'tr.demand_shift_k': '需求修正', 'trend.none': '暂无趋势数据',
      'r.percentile_c': '低百分位(P10)', 'r.median_c': '中位数', 'r.min_c': '最冷住户',
      'r.used': '采用 / 应有', 'r.at_or_above': '达到舒适下限的比例', 'r.floor': '下限',
      'r.id': '节点', 'r.building': '楼栋', 'r.position': '位置', 'r.value_c': '读数', 'r.age_s': '数据时长',
      'r.state': '状态', 'r.valve_cmd_pct': '户阀指令', 'r.valve_pos_pct': '户阀开度', 'r.none': '无室温节点',
      'st.used': '采用', 'st.stale': '过期', 'st.invalid': '无效', 'st.outlier': '离群',
      'st.excluded': '已排除', 'st.vacant': '空置', 'st.no_reading': '无读数', 'st.missing': '无读数',
      'st.out_of_range': '超出范围', 'st.stuck': '数值卡滞', 'st.jump': '跳变',
      'st.suspect_cold': '疑似偏低', 'st.suspect': '疑似故障',
      'pos.top': '顶层', 'pos.ground': '底层', 'pos.end': '边户', 'pos.middle': '中间户',
      'pos.top_end': '顶层边户', 'pos.ground_end': '底层边户',
      'al.active': '当前报警', 'al.recent': '最近报警(本页打开期间已消除)', 'al.code': '代码',
      'al.text': '报警', 'al.since': '开始时间', 'al.cleared': '消除时间', 'al.none': '无当前报警',
      'al.none_recent': '无',
      'd.link': '链路', 'd.health': '状态', 'd.devices': '设备数', 'd.requests': '请求', 'd.errors': '错误',
      'd.last_ok': '最后应答', 'd.devices_all': '全部设备', 'd.lost': '无应答', 'd.device': '设备',
      'd.timeouts': '超时', 'd.latency': '延迟', 'd.ok': '正常应答', 'd.comm_lost': '无应答',
      'd.not_connected': '从未应答', 'd.write_failed': '写入失败', 'd.ago': (a) => `${a}前`,
      'p.connected': '已连接', 'p.backlog': '积压(条)', 'p.dropped': '丢弃(条)',
      'p.last_ack': '最后确认', 'p.broker': '服务器', 'p.last_error': '最近错误',
      'clock.unsynced': '系统时钟未同步', 'footer.config': '配置', 'footer.uptime': '已运行',
      'settings.read_only': '只读:此页面不能修改设定。',
      'settings.token': '写入令牌', 'settings.token_hint': '仅保存在当前浏览器标签页',
      'settings.apply': '应用', 'settings.current': '当前',
      'set.curve_shift_k': '曲线平移', 'set.room_target_c': '室温目标', 'set.operating_mode': '运行模式',
      'set.valve1_manual_pct': '手动阀位', 'set.demand_enabled': '室温需求修正',
      'settings.accepted': (n, o, v) => `已接受:${n} ${o} → ${v}`,
      'settings.refused': (n, r) => `已拒绝:${n}:${r}`,
      'settings.sending': '正在发送…', 'settings.no_token': '请先输入写入令牌',
      'settings.http': (c) => `HTTP ${c}`,
      'a.time': '时间', 'a.source': '来源', 'a.client': '客户端', 'a.what': '内容', 'a.change': '原值 → 新值',
      'a.result': '结果', 'a.reason': '原因', 'a.none': '无记录', 'res.accepted': '已接受', 'res.refused': '已拒绝',
      footer_api: 'JSON 接口', 'footer.api': 'JSON 接口',
      'err.load': (w) => `无法从控制器读取 ${w}。`,
    },
  };

  // Alarm texts by code (the snapshot carries the English text; Chinese from here).
  const ALARM_ZH = {
    101: '室外温度传感器丢失,保持上次有效值', 102: '室外温度传感器丢失,使用替代温度',
    103: '二次供水温度传感器丢失', 104: '二次回水温度传感器无效', 105: '一次回水温度传感器无效',
    106: '一次供水温度传感器无效', 107: '热量表数据过期或无效', 108: '一次阀门反馈无效',
    201: '在线室温节点过少', 202: '部分室温节点无效', 203: '室温节点疑似故障（远低于同类）', 301: '防冻保护', 302: '二次供水超温',
    303: '一次回水超温', 401: '一次阀门未跟随指令', 501: '现场设备无应答', 502: '现场设备写入失败', 601: '平台链路未连接,消息暂存磁盘', 701: '系统时钟跳变,日程按新时间执行', 702: '状态目录不可写,状态未保存',
  };
  const ALARM_EN = {
    101: 'outdoor sensor lost, holding last good value', 102: 'outdoor sensor lost, fallback temperature in use',
    103: 'secondary supply sensor lost', 104: 'secondary return sensor invalid', 105: 'primary return sensor invalid',
    106: 'primary supply sensor invalid', 107: 'heat meter data stale or invalid', 108: 'primary valve feedback invalid',
    201: 'too few room nodes alive', 202: 'some room nodes invalid', 203: 'some room nodes suspect (far colder than their class)', 301: 'frost protection',
    302: 'secondary supply over temperature', 303: 'primary return over temperature',
    401: 'primary valve does not follow its command', 501: 'field device not answering', 502: 'write to field device failed', 601: 'platform link not connected, messages queued on disk', 701: 'wall clock stepped, schedules follow the new time', 702: 'state directory not writable, state not saved',
  };
  // SCADA codes of the limiters (input register active_limiter), shown beside the name.
  const LIMITER_CODE = { return1: 1, return_difference: 2, power: 3, setback: 4, boost: 5, rate: 6, clamp: 7, summer: 8 };
  const LANGS = ['zh-CN', 'en'];
  const TREND_WINDOW_S = 48 * 3600;
  const TREND_STEP_S = 60;

  // ---------------------------------------------------------------- state
  const S = {
    lang: 'en', info: null, snap: null, curve: null, curveAt: 0,
    trend: null, view: { span: TREND_WINDOW_S, x0: null, x1: null },
    audit: [], recent: [], activeSeen: new Map(),
    sort: { key: 'id', dir: 1 }, conn: 'connecting', lastWall: null, es: null, retry: 1000,
  };

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  const SVGNS = 'http://www.w3.org/2000/svg';
  function sv(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, String(v));
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }

  function t(key, ...args) {
    const d = DICT[S.lang] || DICT.en;
    const v = key in d ? d[key] : DICT.en[key];
    if (typeof v === 'function') return v(...args);
    // A name this page does not know yet (a newer controller): show it as the controller spells it.
    return v === undefined ? key.slice(key.indexOf('.') + 1) : v;
  }
  const num = (v) => typeof v === 'number' && Number.isFinite(v);
  const fmtCache = new Map();
  function nf(digits, signed) {
    const k = `${S.lang}|${digits}|${signed ? 1 : 0}`;
    let f = fmtCache.get(k);
    if (!f) {
      f = new Intl.NumberFormat(S.lang, { minimumFractionDigits: digits, maximumFractionDigits: digits, signDisplay: signed ? 'exceptZero' : 'auto' });
      fmtCache.set(k, f);
    }
    return f;
  }
  function fmt(v, digits = 1, unit = '', signed = false) {
    if (!num(v)) return '--';
    const s = nf(digits, signed).format(v);
    return unit ? `${s} ${unit}` : s;
  }
  function fmtAge(s) {
    if (!num(s)) return '--';
    if (s < 90) return fmt(s, 0, 's');
    if (s < 5400) return fmt(s / 60, 0, 'min');
    if (s < 172800) return fmt(s / 3600, 1, 'h');
    return fmt(s / 86400, 1, S.lang === 'zh-CN' ? '天' : 'd');
  }
  function fmtTime(unixS, withDate) {
    if (!num(unixS)) return '--';
    const o = withDate ? { month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }
      : { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false };
    return new Intl.DateTimeFormat(S.lang, o).format(new Date(unixS * 1000));
  }

  // ---------------------------------------------------------------- fields
  function setField(name, value, text) {
    for (const e of $$(`[data-field="${name}"]`)) {
      const digits = e.dataset.digits === undefined ? 1 : Number(e.dataset.digits);
      let shown = text;
      if (shown === undefined) shown = num(value) ? fmt(value, digits, e.dataset.unit || '', e.dataset.signed === '1') : (value === null || value === undefined ? '--' : String(value));
      e.dataset.value = value === null || value === undefined ? '' : String(value);
      if (e.textContent !== shown) e.textContent = shown;
      e.classList.toggle('na', value === null || value === undefined);
    }
  }

  function measurement(snap, key) {
    const m = snap && snap.measurements && snap.measurements[key];
    return m || { value: null, valid: false, age_s: null, rejected: null };
  }
  const validValue = (snap, key) => { const m = measurement(snap, key); return m.valid && !m.rejected ? m.value : null; };

  // ---------------------------------------------------------------- language
  function chooseLanguage() {
    const saved = localStorage.getItem('heatctl.lang');
    if (LANGS.includes(saved)) return saved;
    const server = S.info && S.info.default_language;
    if (LANGS.includes(server)) return server;
    const nav = (navigator.language || 'en').toLowerCase();
    return nav.startsWith('zh') ? 'zh-CN' : 'en';
  }
  function applyLanguage(lang) {
    S.lang = LANGS.includes(lang) ? lang : 'en';
    document.documentElement.lang = S.lang;
    for (const e of $$('[data-i18n]')) e.textContent = t(e.dataset.i18n);
    for (const b of $$('#lang-switch button')) b.setAttribute('aria-pressed', String(b.dataset.lang === S.lang));
    const other = S.lang === 'en' ? 'zh-CN' : 'en';
    const ro = $('#read-only-notice .other-lang');
    if (ro) ro.textContent = `(${DICT[other]['read_only.title']}: ${DICT[other]['read_only.text']})`;
    buildSettings();
    renderAll();
  }

  // ---------------------------------------------------------------- station + why
  function renderStation(s) {
    const ex = s.explanation || {};
    const st = s.settings || {};
    const name = s.station ? [s.station.site_id || s.site, s.station.station_id].filter(Boolean).join(' / ') : s.site;
    setField('station_name', name || '', name || '');
    setField('outdoor_c', ex.outdoor_c);
    setField('damped_outdoor_c', ex.damped_outdoor_c);
    setField('composite_outdoor_c', ex.composite_outdoor_c);
    setField('t_out_c', measurement(s, 't_out_c').value);
    setField('curve_c', ex.curve_c);
    setField('setpoint_c', ex.setpoint_c);
    const t2 = validValue(s, 't2_supply_c');
    setField('t2_supply_c', t2);
    setField('supply_deviation_k', num(t2) && num(ex.setpoint_c) ? t2 - ex.setpoint_c : null);
    setField('t2_return_c', validValue(s, 't2_return_c'));
    setField('t1_supply_c', validValue(s, 't1_supply_c'));
    setField('t1_return_c', validValue(s, 't1_return_c'));
    setField('power1_kw', validValue(s, 'power1_kw'));
    setField('flow1_m3h', validValue(s, 'flow1_m3h'));
    setField('energy1_kwh', validValue(s, 'energy1_kwh'));
    const c = s.commands || {};
    setField('valve1_cmd_pct', c.valve1_cmd_pct);
    setField('valve1_pos_pct', c.valve1_pos_pct);
    setField('base_shift_k', ex.base_shift_k);
    setField('curve_shift_k', st.curve_shift_k);
    setField('demand_shift_k', ex.demand_shift_k);
    setField('valve_demand_shift_k', ex.valve_demand_shift_k);
    setField('room_target_c', st.room_target_c);
    setField('valve1_manual_pct', st.valve1_manual_pct);
    setField('demand_enabled', st.demand_enabled, st.demand_enabled === undefined ? '--' : t(st.demand_enabled ? 'on' : 'off'));
    const mode = st.mode;
    setField('mode', mode, mode ? t(`mode.${mode}`) + (mode === 'manual' ? ` ${fmt(st.valve1_manual_pct, 0, '%')}` : '') : '--');
    setField('heating_on', ex.heating_on, t(ex.heating_on ? 'heating_on' : 'heating_off'));
    $('#station').dataset.heatingOn = String(!!ex.heating_on);
  }

  function invalidSignals(s) {
    const out = [];
    for (const [key, m] of Object.entries(s.measurements || {})) {
      if (m.rejected) out.push({ key, reason: m.rejected, m });
      else if (!m.valid && (m.value !== null || m.age_s !== null)) out.push({ key, reason: 'not_valid', m });
      else if (!m.valid) out.push({ key, reason: 'not_connected', m });
    }
    return out;
  }

  function renderWhy(s) {
    const ex = s.explanation || {};
    const lims = Array.isArray(ex.limiters) ? ex.limiters : [];
    const active = ex.active_limiter || null;
    const al = $('#active-limiter');
    al.dataset.limiter = active || 'none';
    al.dataset.cycle = String((s.station && s.station.cycle) ?? '');
    al.dataset.code = active ? String(LIMITER_CODE[active] ?? '') : '0';
    const activeEffect = lims.find((l) => l.limiter === active);
    al.dataset.deltaK = activeEffect ? String(activeEffect.delta_k) : '';
    al.textContent = active ? `${t(`lim.${active}`)}${activeEffect ? ` (${fmt(activeEffect.delta_k, 1, 'K', true)})` : ''} · SCADA ${LIMITER_CODE[active] ?? '?'}` : t('none');
    al.className = active ? 'pill warn' : 'pill ok';

    const sup = ex.supervisor || null;
    const se = $('#supervisor');
    se.dataset.value = sup || 'none';
    se.textContent = sup ? t(`sup.${sup}`) : t('sup.none');
    se.className = sup ? 'pill bad' : 'pill ok';

    const src = ex.outdoor_source || null;
    const os = $('#outdoor-source');
    os.dataset.value = src || '';
    os.textContent = src ? t(`src.${src}`) : '--';
    os.className = src && src !== 'measured' ? 'pill warn' : 'pill ok';

    const fb = $('#fallbacks');
    fb.replaceChildren(...(ex.fallbacks || []).map((code) => el('li', { 'data-code': code }, `${code} `, alarmText(code))));
    if (!fb.children.length) fb.append(el('li', { class: 'muted', text: t('why.no_fallback') }));

    const inv = invalidSignals(s);
    const used = inv.filter((i) => i.reason !== 'not_connected');
    const nc = inv.filter((i) => i.reason === 'not_connected');
    const list = $('#invalid-signals');
    list.replaceChildren(...used.map((i) => el('li', { 'data-signal': i.key, 'data-reason': i.reason, class: 'bad' },
      el('strong', { text: t(`sig.${i.key}`) }), ': ', t(`rej.${i.reason}`),
      num(i.m.value) ? ` (${fmt(i.m.value, 1)}${num(i.m.age_s) ? `, ${t('why.age', fmtAge(i.m.age_s))}` : ''})` : '')));
    if (!used.length) list.append(el('li', { class: 'ok', text: t('why.all_valid') }));
    if (nc.length) list.append(el('li', { class: 'muted', 'data-reason': 'not_connected' }, `${t('why.not_connected')}: ${nc.map((i) => t(`sig.${i.key}`)).join(', ')}`));

    const r = s.rooms || {};
    const q = $('#rooms-quorum');
    q.dataset.value = String(!!r.quorum);
    q.textContent = num(r.expected) && r.expected > 0 ? t(r.quorum ? 'why.quorum' : 'why.no_quorum', r.used ?? 0, r.expected) : '--';
    q.className = r.quorum || !r.expected ? 'pill ok' : 'pill warn';

    // The chain: curve -> shifts -> limiters -> setpoint.
    const rows = [];
    const row = (label, value, attrs, cls) => rows.push(el('tr', Object.assign({ class: cls || '' }, attrs || {}), el('th', { text: label }), el('td', { class: 'num', text: value })));
    const outTxt = num(ex.outdoor_c) ? fmt(ex.outdoor_c, 1, '°C') : null;
    row(outTxt ? t('why.chain.curve', outTxt) : t('why.chain.curve_no_outdoor'), fmt(ex.curve_c, 1, '°C'), { 'data-step': 'curve' });
    row(t('why.chain.base'), fmt(ex.base_shift_k, 1, 'K', true), { 'data-step': 'base_shift_k' });
    row(t('why.chain.demand'), fmt(ex.demand_shift_k, 2, 'K', true), { 'data-step': 'demand_shift_k' });
    row(t('why.chain.valve_demand'), fmt(ex.valve_demand_shift_k, 2, 'K', true), { 'data-step': 'valve_demand_shift_k' });
    const shifts = (ex.base_shift_k || 0) + (ex.demand_shift_k || 0) + (ex.valve_demand_shift_k || 0);
    row(t('why.chain.before'), num(ex.curve_c) ? fmt(ex.curve_c + shifts, 1, '°C') : '--', { 'data-step': 'before' }, 'sum');
    for (const l of lims) {
      row(`${t(`lim.${l.limiter}`)}${l.limiter === active ? ' ◀' : ''}`, fmt(l.delta_k, 1, 'K', true),
        { 'data-step': 'limiter', 'data-limiter': l.limiter, 'data-delta-k': l.delta_k }, l.limiter === active ? 'active' : '');
    }
    if (num(ex.setpoint_c)) row(t('why.chain.setpoint'), fmt(ex.setpoint_c, 1, '°C'), { 'data-step': 'setpoint' }, 'sum total');
    else row(t('why.chain.off'), '--', { 'data-step': 'setpoint' }, 'sum total');
    $('#why-chain tbody').replaceChildren(...rows);

    // One sentence.
    let text;
    if (!ex.heating_on || !num(ex.setpoint_c)) text = t('why.sum.off');
    else {
      text = t('why.sum.setpoint', fmt(ex.setpoint_c, 1, '°C'), fmt(ex.curve_c, 1, '°C'), outTxt);
      if (Math.abs(shifts) >= 0.05) text += t('why.sum.shift', fmt(shifts, 1, 'K', true));
      text += activeEffect ? t('why.sum.limiter', t(`lim.${active}`), fmt(activeEffect.delta_k, 1, 'K', true)) : (active ? t('why.sum.limiter', t(`lim.${active}`), '') : t('why.sum.no_limiter'));
      text += S.lang === 'zh-CN' ? '。' : '.';
    }
    if (sup) text += t('why.sum.supervisor', t(`sup.${sup}`));
    if (used.length) text += t('why.sum.invalid', used.length);
    $('#why-summary').textContent = text;
  }

  function alarmText(code, english) {
    if (S.lang === 'zh-CN' && ALARM_ZH[code]) return ALARM_ZH[code];
    return english || ALARM_EN[code] || String(code);
  }

  // ---------------------------------------------------------------- rooms
  const STATE_RANK = { used: 0, suspect_cold: 1, suspect: 1, outlier: 1, stale: 2, stuck: 3, jump: 4, out_of_range: 5, invalid: 6, missing: 7, no_reading: 7, excluded: 8, vacant: 9 };
  function renderRooms(s) {
    const r = s.rooms || {};
    setField('rooms_percentile_c', r.percentile_c);
    setField('rooms_median_c', r.median_c);
    setField('rooms_min_c', r.min_c);
    setField('rooms_used', r.used, num(r.used) ? String(r.used) : '--');
    setField('rooms_expected', r.expected, num(r.expected) ? String(r.expected) : '--');
    setField('rooms_at_or_above_floor_pct', r.at_or_above_floor_pct);
    setField('rooms_comfort_floor_c', r.comfort_floor_c);
    const nodes = Array.isArray(r.nodes) ? r.nodes.slice() : [];
    const { key, dir } = S.sort;
    const val = (n) => (key === 'state' ? STATE_RANK[n.state] ?? 9 : n[key]);
    nodes.sort((a, b) => {
      const x = val(a); const y = val(b);
      const xn = x === null || x === undefined; const yn = y === null || y === undefined;
      if (xn || yn) return xn === yn ? 0 : (xn ? 1 : -1); // unknown last, either direction
      if (typeof x === 'number' && typeof y === 'number') return (x - y) * dir;
      return String(x).localeCompare(String(y), S.lang, { numeric: true }) * dir;
    });
    const tb = $('#rooms-table tbody');
    if (!nodes.length) { tb.replaceChildren(el('tr', {}, el('td', { colspan: 8, class: 'muted', text: t('r.none') }))); return; }
    tb.replaceChildren(...nodes.map((n) => el('tr', { 'data-node-id': n.id, 'data-state': n.state },
      el('td', { text: n.id }), el('td', { text: n.building ?? '' }), el('td', { 'data-value': n.position ?? '', text: n.position ? t(`pos.${n.position}`) : '' }),
      el('td', { class: 'num', 'data-value': n.value_c ?? '', text: fmt(n.value_c, 1, '°C') }),
      el('td', { class: 'num', 'data-value': n.age_s ?? '', text: fmtAge(n.age_s) }),
      el('td', {}, el('span', { class: `state st-${n.state}`, text: t(`st.${n.state}`) })),
      el('td', { class: 'num', text: fmt(n.valve_cmd_pct, 0, '%') }),
      el('td', { class: 'num', text: fmt(n.valve_pos_pct, 0, '%') }))));
    for (const th of $$('#rooms-table th[data-sort-key]')) {
      th.dataset.sortDir = th.dataset.sortKey === key ? (dir > 0 ? 'asc' : 'desc') : '';
      th.setAttribute('aria-sort', th.dataset.sortKey === key ? (dir > 0 ? 'ascending' : 'descending') : 'none');
    }
  }

  // ---------------------------------------------------------------- alarms, devices, platform
  function renderAlarms(s) {
    const now = s.clock ? s.clock.clock_unix_s : null;
    const active = Array.isArray(s.alarms) ? s.alarms : [];
    const seenNow = new Map(active.map((a) => [a.code, a]));
    for (const [code, a] of S.activeSeen) {
      if (!seenNow.has(code)) S.recent.unshift({ code, text: a.text, since_s: a.since_s, cleared_s: now });
    }
    S.recent.length = Math.min(S.recent.length, 50);
    S.activeSeen = seenNow;
    const since = (v) => (num(v) && v > 1e8 ? fmtTime(v, true) : fmt(v, 0, 's'));
    const tb = $('#alarms-active tbody');
    tb.replaceChildren(...active.map((a) => el('tr', { 'data-code': a.code, class: 'bad' },
      el('td', { text: a.code }), el('td', { text: alarmText(a.code, a.text) }), el('td', { text: since(a.since_s) }))));
    if (!active.length) tb.append(el('tr', { class: 'none' }, el('td', { colspan: 3, class: 'ok', text: t('al.none') })));
    const rb = $('#alarms-recent tbody');
    rb.replaceChildren(...S.recent.map((a) => el('tr', { 'data-code': a.code },
      el('td', { text: a.code }), el('td', { text: alarmText(a.code, a.text) }), el('td', { text: since(a.since_s) }), el('td', { text: since(a.cleared_s) }))));
    if (!S.recent.length) rb.append(el('tr', { class: 'none' }, el('td', { colspan: 4, class: 'muted', text: t('al.none_recent') })));
    $('#alarms').dataset.count = String(active.length);
  }

  function health(d) {
    if (d.write_failed) return ['bad', t('d.write_failed')];
    if (d.comm_lost) return ['bad', t('d.comm_lost')];
    if (!d.connected) return ['warn', t('d.not_connected')];
    return ['ok', t('d.ok')];
  }
  function renderField(s) {
    const now = s.clock ? s.clock.clock_unix_s : null;
    const ago = (v) => (num(v) && num(now) ? t('d.ago', fmtAge(Math.max(0, now - v))) : '--');
    const links = Array.isArray(s.links) ? s.links : [];
    $('#links-table tbody').replaceChildren(...links.map((l) => {
      const [cls, txt] = l.connected ? (l.devices_connected < l.devices ? ['warn', `${t('d.ok')} (${l.devices_connected}/${l.devices})`] : ['ok', t('d.ok')]) : ['bad', t('d.comm_lost')];
      return el('tr', { 'data-link': l.name, 'data-connected': String(!!l.connected) },
        el('td', { text: l.name }), el('td', {}, el('span', { class: `pill ${cls}`, text: txt })),
        el('td', { class: 'num', text: `${l.devices_connected}/${l.devices}` }), el('td', { class: 'num', text: fmt(l.requests, 0) }),
        el('td', { class: 'num', text: fmt(l.errors, 0) }), el('td', { text: ago(l.last_ok_s) }));
    }));
    const devs = Array.isArray(s.devices) ? s.devices.slice() : [];
    const lost = devs.filter((d) => d.comm_lost).length;
    setField('devices_total', devs.length, String(devs.length));
    setField('devices_lost', lost, String(lost));
    const details = $('#devices-details');
    if (details.open || !details.dataset.rendered) {
      devs.sort((a, b) => Number(b.comm_lost) - Number(a.comm_lost) || Number(!b.connected) - Number(!a.connected));
      $('#devices-table tbody').replaceChildren(...devs.map((d) => {
        const [cls, txt] = health(d);
        return el('tr', { 'data-device': d.name, 'data-health': cls },
          el('td', { text: d.name }), el('td', { text: d.link }), el('td', {}, el('span', { class: `pill ${cls}`, text: txt })),
          el('td', { class: 'num', text: fmt(d.requests, 0) }), el('td', { class: 'num', text: fmt(d.errors, 0) }),
          el('td', { class: 'num', text: fmt(d.timeouts, 0) }), el('td', { class: 'num', text: fmt(d.last_latency_ms, 1, 'ms') }));
      }));
      details.dataset.rendered = '1';
    }
    const p = s.platform || (S.info && S.info.platform) || null;
    const box = $('#platform');
    box.hidden = !p;
    if (p) {
      setField('platform_connected', p.connected, t(p.connected ? 'yes' : 'no'));
      setField('platform_backlog_records', p.backlog_records);
      setField('platform_dropped_records', p.dropped_records);
      setField('platform_last_ack', p.last_ack_unix_s, fmtTime(p.last_ack_unix_s, true));
      setField('platform_broker', p.broker ?? null, p.broker || '--');
      setField('platform_last_error', p.last_error ?? null, p.last_error || '--');
    }
  }

  // ---------------------------------------------------------------- audit
  function renderAudit() {
    const tb = $('#audit-table tbody');
    const rows = S.audit.slice().reverse();
    const v = (x) => (x === null || x === undefined ? '' : typeof x === 'object' ? JSON.stringify(x) : String(x));
    tb.replaceChildren(...rows.map((a) => el('tr', { 'data-result': String(a.result || '').toLowerCase(), 'data-what': a.what, 'data-source': String(a.source || '').toLowerCase() },
      el('td', { text: a.time_utc ? fmtTime(Date.parse(a.time_utc) / 1000, true) : '' }), el('td', { text: a.source }),
      el('td', { text: a.client }), el('td', { text: a.what }), el('td', { text: `${v(a.old)} → ${v(a.new)}` }),
      el('td', {}, el('span', { class: `pill ${/accept/i.test(a.result || '') ? 'ok' : 'bad'}`, text: t(`res.${a.result}`) })),
      el('td', { text: a.reason || '' }))));
    if (!rows.length) tb.append(el('tr', { class: 'none' }, el('td', { colspan: 7, class: 'muted', text: t('a.none') })));
  }
  function addAudit(rec) {
    S.audit.push(rec);
    if (S.audit.length > 100) S.audit.splice(0, S.audit.length - 100);
    renderAudit();
  }
  const auditKey = (a) => JSON.stringify([a.time_utc, a.source, a.client, a.what, a.old, a.new, a.result]);
  // Take the audit tail again: a decision made while the event stream was down (or before it
  // first opened) reaches the page only this way. Rows that came over the stream while the
  // tail was on its way, and so are not in it, are kept after it.
  async function reloadAudit() {
    const tail = await getJson('/api/audit?n=50').catch(() => null);
    if (Array.isArray(tail)) {
      const seen = new Set(tail.map(auditKey));
      const newest = tail.length ? String(tail[tail.length - 1].time_utc) : '';
      S.audit = tail.concat(S.audit.filter((a) => !seen.has(auditKey(a)) && String(a.time_utc) >= newest));
    }
    renderAudit();
  }

  // ---------------------------------------------------------------- plots
  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + 1; lo -= 1; }
    const raw = (hi - lo) / n;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step || 0);
    return out;
  }
  function pathOf(xs, ys, sx, sy) {
    let d = ''; let pen = false;
    for (let i = 0; i < xs.length; i++) {
      const y = ys[i];
      if (!num(y) || !num(xs[i])) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${sx(xs[i]).toFixed(1)} ${sy(y).toFixed(1)}`;
      pen = true;
    }
    return d;
  }

  function renderCurve() {
    const svg = $('#curve-plot');
    const c = S.curve;
    const W = 520; const H = 320; const m = { l: 44, r: 12, t: 12, b: 36 };
    const kids = [];
    if (!c || !Array.isArray(c.points) || !c.points.length) {
      kids.push(sv('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'muted' }, t('curve.none')));
      svg.replaceChildren(...kids); svg.dataset.points = '0'; return;
    }
    const xs = c.points.map((p) => p.outdoor_c);
    const s = S.snap && S.snap.explanation;
    const op = Object.assign({}, c.operating_point || {});
    if (s && num(s.setpoint_c)) op.setpoint_c = s.setpoint_c;
    const t2 = S.snap ? validValue(S.snap, 't2_supply_c') : null;
    if (num(t2)) op.t2_supply_c = t2;
    const ys = [...c.points.map((p) => p.curve_c), ...c.points.map((p) => p.shifted_c), c.t2_supply_min_c, c.t2_supply_max_c, op.setpoint_c, op.t2_supply_c].filter(num);
    const x0 = Math.min(...xs); const x1 = Math.max(...xs);
    const y0 = Math.floor((Math.min(...ys) - 2) / 5) * 5; const y1 = Math.ceil((Math.max(...ys) + 2) / 5) * 5;
    const sx = (x) => m.l + ((x - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
    const sy = (y) => H - m.b - ((y - y0) / (y1 - y0 || 1)) * (H - m.t - m.b);
    for (const v of niceTicks(x0, x1, 8)) kids.push(sv('line', { x1: sx(v), x2: sx(v), y1: m.t, y2: H - m.b, class: 'grid' }), sv('text', { x: sx(v), y: H - m.b + 14, 'text-anchor': 'middle', class: 'tick' }, fmt(v, 0)));
    for (const v of niceTicks(y0, y1, 6)) kids.push(sv('line', { x1: m.l, x2: W - m.r, y1: sy(v), y2: sy(v), class: 'grid' }), sv('text', { x: m.l - 4, y: sy(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmt(v, 0)));
    kids.push(sv('text', { x: W - m.r, y: H - 4, 'text-anchor': 'end', class: 'axis-label' }, t('curve.x')));
    kids.push(sv('text', { x: m.l + 4, y: m.t + 12, class: 'axis-label' }, t('curve.y')));
    for (const lim of [c.t2_supply_min_c, c.t2_supply_max_c]) if (num(lim)) kids.push(sv('line', { x1: m.l, x2: W - m.r, y1: sy(lim), y2: sy(lim), class: 'limit', 'data-limit': lim }));
    kids.push(sv('path', { d: pathOf(xs, c.points.map((p) => p.curve_c), sx, sy), class: 'curve base', 'data-series': 'curve' }));
    kids.push(sv('path', { d: pathOf(xs, c.points.map((p) => p.shifted_c), sx, sy), class: 'curve shifted', 'data-series': 'shifted' }));
    if (num(op.outdoor_c) && num(op.t2_supply_c)) kids.push(sv('circle', { cx: sx(Math.min(x1, Math.max(x0, op.outdoor_c))), cy: sy(op.t2_supply_c), r: 4, class: 'supply-point', id: 'curve-supply' }));
    if (num(op.outdoor_c) && num(op.setpoint_c)) {
      kids.push(sv('circle', { cx: sx(Math.min(x1, Math.max(x0, op.outdoor_c))), cy: sy(op.setpoint_c), r: 6, class: 'op-point', id: 'curve-operating-point', 'data-outdoor-c': op.outdoor_c, 'data-setpoint-c': op.setpoint_c },
        sv('title', {}, `${fmt(op.outdoor_c, 1, '°C')} → ${fmt(op.setpoint_c, 1, '°C')}`)));
    }
    svg.replaceChildren(sv('title', { id: 'curve-title' }, t('sec.curve')), ...kids);
    svg.dataset.points = String(c.points.length);
    $('#curve-legend').replaceChildren(
      el('span', { class: 'key base' }, t('curve.curve')), el('span', { class: 'key shifted' }, t('curve.shifted')),
      el('span', { class: 'key limit' }, `${t('curve.limits')} ${fmt(c.t2_supply_min_c, 0)}…${fmt(c.t2_supply_max_c, 0, '°C')}`),
      el('span', { class: 'key op' }, t('curve.point')), el('span', { class: 'key supply' }, t('curve.supply')));
  }

  const CHARTS = [
    { id: 'temps', title: 'trend.temps', unit: '°C', series: ['outdoor_c', 'outdoor_damped_c', 'setpoint_c', 't2_supply_c', 't2_return_c', 't1_return_c', 'rooms_p10_c', 'rooms_median_c'], h: 260 },
    { id: 'valve', title: 'trend.valve', unit: '%', series: ['valve1_cmd_pct'], h: 120, fixed: [0, 100] },
    { id: 'shift', title: 'trend.shift', unit: 'K', series: ['demand_shift_k'], h: 120 },
  ];
  const TREND_COLS = ['outdoor_c', 'outdoor_damped_c', 'setpoint_c', 't2_supply_c', 't2_return_c', 't1_return_c', 'valve1_cmd_pct', 'rooms_p10_c', 'rooms_median_c', 'demand_shift_k'];
  const hidden = new Set(JSON.parse(localStorage.getItem('heatctl.hiddenSeries') || '[]'));

  function trendLatest() { const ts = S.trend && S.trend.t_unix_s; return ts && ts.length ? ts[ts.length - 1] : null; }
  function viewRange() {
    const last = trendLatest();
    if (S.view.x0 !== null && S.view.x1 !== null) return [S.view.x0, S.view.x1];
    if (!num(last)) return [null, null];
    // Following live: the last span, or from the first row when the controller has run less long.
    const first = S.trend.t_unix_s[0];
    return [Math.min(last - 3600, Math.max(first, last - S.view.span)), last];
  }
  function setSpan(hours) {
    S.view = { span: hours * 3600, x0: null, x1: null };
    renderTrends();
  }

  function buildTrendCharts() {
    const box = $('#trend-charts');
    box.replaceChildren(...CHARTS.map((c) => el('div', { class: 'chart', 'data-chart': c.id },
      el('div', { class: 'chart-head' }, el('strong', { 'data-i18n': c.title, text: t(c.title) }), ` (${c.unit}) `,
        el('span', { class: 'legend' }, ...c.series.map((k) => el('label', { class: `key s-${k}` },
          el('input', { type: 'checkbox', 'data-series': k, checked: !hidden.has(k) }), t(`tr.${k}`))))),
      sv('svg', { class: 'plot trend', viewBox: `0 0 1000 ${c.h}`, preserveAspectRatio: 'none', 'data-chart': c.id }))));
    for (const cb of $$('#trend-charts input[data-series]')) {
      cb.addEventListener('change', () => {
        if (cb.checked) hidden.delete(cb.dataset.series); else hidden.add(cb.dataset.series);
        localStorage.setItem('heatctl.hiddenSeries', JSON.stringify([...hidden]));
        renderTrends();
      });
    }
    for (const svg of $$('#trend-charts svg')) attachZoom(svg);
  }

  function renderTrends() {
    const tr = S.trend;
    const [x0, x1] = viewRange();
    const ts = tr ? tr.t_unix_s : [];
    for (const b of $$('#trend-ranges button')) b.setAttribute('aria-pressed', String(S.view.x0 === null && S.view.span === Number(b.dataset.rangeH) * 3600));
    $('#trend-charts').dataset.rows = String(ts.length);
    $('#trend-charts').dataset.x0 = num(x0) ? String(x0) : '';
    $('#trend-charts').dataset.x1 = num(x1) ? String(x1) : '';
    $('#trend-span').textContent = num(x0) ? `${fmtTime(x0, true)} – ${fmtTime(x1, true)}` : '';
    for (const c of CHARTS) {
      const svg = $(`#trend-charts svg[data-chart="${c.id}"]`);
      if (!svg) continue;
      const W = 1000; const H = c.h; const m = { l: 46, r: 8, t: 8, b: 18 };
      if (!ts.length || !num(x0) || !(x1 > x0)) {
        svg.replaceChildren(sv('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'muted' }, t('trend.none')));
        continue;
      }
      // Visible rows (binary search on the sorted time column), one row either side for continuity.
      let i0 = lowerBound(ts, x0); let i1 = lowerBound(ts, x1 + 1e-9);
      i0 = Math.max(0, i0 - 1); i1 = Math.min(ts.length, i1 + 1);
      const xs = ts.slice(i0, i1);
      const series = c.series.filter((k) => !hidden.has(k) && Array.isArray(tr[k]));
      let lo = Infinity; let hi = -Infinity;
      for (const k of series) for (let i = i0; i < i1; i++) { const v = tr[k][i]; if (num(v)) { if (v < lo) lo = v; if (v > hi) hi = v; } }
      if (c.fixed) { lo = Math.min(lo, c.fixed[0]); hi = Math.max(hi, c.fixed[1]); }
      if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
      if (hi - lo < 1) { lo -= 0.5; hi += 0.5; }
      const pad = (hi - lo) * 0.05; lo -= pad; hi += pad;
      const sx = (x) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
      const sy = (y) => H - m.b - ((y - lo) / (hi - lo)) * (H - m.t - m.b);
      const kids = [];
      for (const v of niceTicks(lo, hi, c.h > 200 ? 6 : 3)) kids.push(sv('line', { x1: m.l, x2: W - m.r, y1: sy(v), y2: sy(v), class: 'grid' }), sv('text', { x: m.l - 4, y: sy(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmt(v, Math.abs(hi - lo) < 5 ? 1 : 0)));
      for (const v of timeTicks(x0, x1)) kids.push(sv('line', { x1: sx(v), x2: sx(v), y1: m.t, y2: H - m.b, class: 'grid' }), sv('text', { x: sx(v), y: H - 4, 'text-anchor': 'middle', class: 'tick' }, fmtTickTime(v, x1 - x0)));
      const clip = `clip-${c.id}`;
      kids.push(sv('defs', {}, sv('clipPath', { id: clip }, sv('rect', { x: m.l, y: 0, width: W - m.l - m.r, height: H }))));
      for (const k of series) kids.push(sv('path', { d: pathOf(xs, tr[k].slice(i0, i1), sx, sy), class: `line s-${k}`, 'data-series': k, 'clip-path': `url(#${clip})` }));
      kids.push(sv('rect', { class: 'sel', x: 0, y: m.t, width: 0, height: H - m.t - m.b, visibility: 'hidden' }));
      svg.replaceChildren(...kids);
      svg.dataset.ml = m.l; svg.dataset.mr = m.r;
    }
  }
  function lowerBound(a, v) { let lo = 0; let hi = a.length; while (lo < hi) { const mid = (lo + hi) >> 1; if (a[mid] < v) lo = mid + 1; else hi = mid; } return lo; }
  function timeTicks(x0, x1) {
    const span = x1 - x0;
    const steps = [300, 600, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
    const step = steps.find((s) => span / s <= 8) || 86400;
    const tz = new Date(x0 * 1000).getTimezoneOffset() * 60;
    const out = [];
    for (let v = Math.ceil((x0 - tz) / step) * step + tz; v <= x1; v += step) out.push(v);
    return out;
  }
  function fmtTickTime(v, span) {
    const o = span > 86400 ? { month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false } : { hour: '2-digit', minute: '2-digit', hour12: false };
    return new Intl.DateTimeFormat(S.lang, o).format(new Date(v * 1000));
  }

  function attachZoom(svg) {
    const toX = (clientX) => {
      const r = svg.getBoundingClientRect();
      const ml = Number(svg.dataset.ml || 46) * (r.width / 1000); const mr = Number(svg.dataset.mr || 8) * (r.width / 1000);
      const [x0, x1] = viewRange();
      const f = Math.min(1, Math.max(0, (clientX - r.left - ml) / (r.width - ml - mr)));
      return { x: x0 + f * (x1 - x0), f, px: clientX - r.left, r };
    };
    svg.addEventListener('wheel', (ev) => {
      const [x0, x1] = viewRange();
      if (!num(x0)) return;
      ev.preventDefault();
      const { x } = toX(ev.clientX);
      const k = ev.deltaY > 0 ? 1.25 : 0.8;
      zoomTo(x - (x - x0) * k, x + (x1 - x) * k);
    }, { passive: false });
    let start = null;
    svg.addEventListener('pointerdown', (ev) => { if (ev.button !== 0 || !num(viewRange()[0])) return; start = toX(ev.clientX); svg.setPointerCapture(ev.pointerId); });
    svg.addEventListener('pointermove', (ev) => {
      if (!start) return;
      const cur = toX(ev.clientX);
      const sel = $('rect.sel', svg);
      if (!sel) return;
      const a = Math.min(start.px, cur.px) * (1000 / cur.r.width); const b = Math.max(start.px, cur.px) * (1000 / cur.r.width);
      sel.setAttribute('x', a); sel.setAttribute('width', b - a); sel.setAttribute('visibility', 'visible');
    });
    const end = (ev) => {
      if (!start) return;
      const cur = toX(ev.clientX); const s0 = start; start = null;
      if (Math.abs(cur.px - s0.px) > 5) zoomTo(Math.min(s0.x, cur.x), Math.max(s0.x, cur.x)); else renderTrends();
    };
    svg.addEventListener('pointerup', end);
    svg.addEventListener('pointercancel', () => { start = null; renderTrends(); });
  }
  function zoomTo(a, b) {
    const last = trendLatest(); const first = S.trend && S.trend.t_unix_s.length ? S.trend.t_unix_s[0] : a;
    const minSpan = 5 * TREND_STEP_S;
    if (b - a < minSpan) { const c = (a + b) / 2; a = c - minSpan / 2; b = c + minSpan / 2; }
    a = Math.max(a, Math.min(first, last - TREND_WINDOW_S)); b = Math.min(b, last);
    if (!(b > a)) return;
    S.view = { span: b - a, x0: a, x1: b };
    renderTrends();
  }

  // The trends as the server dates them: rows kept on the controller's monotonic clock, dated
  // with its latest wall-minus-monotonic offset.
  let trendsLoading = false;
  async function loadTrends() {
    if (trendsLoading) return;
    trendsLoading = true;
    try {
      const tr = await getJson('/api/trends');
      const n = Array.isArray(tr.t_unix_s) ? tr.t_unix_s.length : 0;
      S.trend = { t_unix_s: Array.isArray(tr.t_unix_s) ? tr.t_unix_s : [] };
      for (const k of TREND_COLS) S.trend[k] = Array.isArray(tr[k]) ? tr[k] : new Array(n).fill(null);
    } catch (e) {
      S.trend = { t_unix_s: [] };
      for (const k of TREND_COLS) S.trend[k] = [];
    } finally { trendsLoading = false; }
    renderTrends();
  }

  function appendTrend(s) {
    if (!S.trend) return;
    const ex = s.explanation || {}; const r = s.rooms || {};
    const tNow = s.clock && s.clock.clock_unix_s;
    if (!num(tNow)) return;
    // The wall clock was stepped (NTP after a boot in 1970, a hand set): the rows held here
    // carry the old dates, so take the series again as the server dates it now.
    const mono = s.clock.mono_s;
    if (num(mono)) {
      const offset = tNow - mono;
      const stepped = num(S.trendOffset) && Math.abs(offset - S.trendOffset) > 5;
      S.trendOffset = offset;
      if (stepped) { loadTrends(); return; }
    }
    const ts = S.trend.t_unix_s;
    if (ts.length && tNow - ts[ts.length - 1] < TREND_STEP_S) return;
    const row = {
      outdoor_c: ex.outdoor_c, outdoor_damped_c: ex.damped_outdoor_c, setpoint_c: ex.setpoint_c,
      t2_supply_c: validValue(s, 't2_supply_c'), t2_return_c: validValue(s, 't2_return_c'), t1_return_c: validValue(s, 't1_return_c'),
      valve1_cmd_pct: s.commands ? s.commands.valve1_cmd_pct : null, rooms_p10_c: r.percentile_c, rooms_median_c: r.median_c,
      demand_shift_k: ex.demand_shift_k,
    };
    ts.push(tNow);
    for (const k of TREND_COLS) { if (!Array.isArray(S.trend[k])) S.trend[k] = new Array(ts.length - 1).fill(null); S.trend[k].push(num(row[k]) ? row[k] : null); }
    // Keep 48 h.
    let drop = 0;
    while (drop < ts.length && ts[drop] < tNow - TREND_WINDOW_S) drop++;
    if (drop) { ts.splice(0, drop); for (const k of TREND_COLS) S.trend[k].splice(0, drop); }
    S.trendDirty = true;
  }

  // ---------------------------------------------------------------- settings
  const SETTINGS = {
    curve_shift_k: { type: 'number', min: -30, max: 30, step: 0.1, unit: 'K', cur: (s) => s.curve_shift_k },
    room_target_c: { type: 'number', min: 12, max: 26, step: 0.1, unit: '°C', cur: (s) => s.room_target_c },
    operating_mode: { type: 'select', options: ['auto', 'off', 'manual'], label: (v) => t(`mode.${v}`), cur: (s) => s.mode },
    valve1_manual_pct: { type: 'number', min: 0, max: 100, step: 0.5, unit: '%', cur: (s) => s.valve1_manual_pct },
    demand_enabled: { type: 'select', options: ['true', 'false'], label: (v) => t(v === 'true' ? 'on' : 'off'), cur: (s) => s.demand_enabled },
  };
  function buildSettings() {
    const slot = $('#settings-slot');
    const info = S.info;
    const writable = info && info.write_enabled;
    $('#read-only-notice').hidden = !info || !!writable;
    const why = $('#read-only-reason');
    if (why) why.textContent = info && !writable && info.read_only_reason ? ` (${info.read_only_reason})` : '';
    $('#settings-ro-text').hidden = !info || !!writable;
    document.body.dataset.writeEnabled = String(!!writable);
    if (!writable) { slot.replaceChildren(); return; }
    const prevResult = $('#settings-result');
    const names = (info.writable || []).filter((n) => SETTINGS[n]);
    const tokenInput = el('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', value: sessionStorage.getItem('heatctl.token') || '' });
    tokenInput.addEventListener('input', () => sessionStorage.setItem('heatctl.token', tokenInput.value));
    const rows = names.map((n) => {
      const d = SETTINGS[n];
      const input = d.type === 'select'
        ? el('select', { name: n, id: `set-${n}` }, ...d.options.map((o) => el('option', { value: o, text: d.label(o) })))
        : el('input', { type: 'number', name: n, id: `set-${n}`, min: d.min, max: d.max, step: d.step, inputmode: 'decimal' });
      return el('div', { class: 'set-row', 'data-setting': n },
        el('label', { for: `set-${n}`, text: t(`set.${n}`) }),
        el('span', { class: 'input' }, input, d.unit ? el('span', { class: 'unit', text: d.unit }) : null),
        el('span', { class: 'muted cur' }, `${t('settings.current')}: `, el('span', { class: 'cur-value', 'data-setting-current': n })),
        el('button', { type: 'button', class: 'apply', 'data-apply': n, text: t('settings.apply'), onclick: () => submitSetting(n) }));
    });
    const form = el('form', { id: 'settings-form', autocomplete: 'off', onsubmit: (e) => e.preventDefault() },
      el('div', { class: 'set-row token' }, el('label', { for: 'token', text: t('settings.token') }), el('span', { class: 'input' }, tokenInput), el('span', { class: 'muted', text: t('settings.token_hint') })),
      ...rows,
      el('output', { id: 'settings-result', 'data-outcome': prevResult ? prevResult.dataset.outcome : '', 'aria-live': 'polite' }, prevResult ? prevResult.textContent : ''));
    // A value the technician is entering is never overwritten by the live refresh, even when
    // chosen before the first snapshot has filled the form.
    const touch = (e) => { if (e.target && e.target.id && e.target.id.startsWith('set-')) e.target.dataset.touched = '1'; };
    form.addEventListener('input', touch);
    form.addEventListener('change', touch);
    slot.replaceChildren(form);
    fillSettings(true);
  }
  function fillSettings(force) {
    const st = S.snap && S.snap.settings;
    if (!st) return;
    for (const [n, d] of Object.entries(SETTINGS)) {
      const cur = d.cur(st);
      const span = $(`[data-setting-current="${n}"]`);
      if (!span) continue;
      span.dataset.value = cur === undefined ? '' : String(cur);
      span.textContent = d.type === 'select' ? d.label(String(cur)) : fmt(cur, 1, d.unit);
      const input = $(`#set-${n}`);
      if (input && (force || (!input.dataset.touched && document.activeElement !== input))) {
        input.value = cur === undefined ? '' : String(cur);
      }
    }
  }
  async function submitSetting(name) {
    const out = $('#settings-result');
    const input = $(`#set-${name}`);
    const d = SETTINGS[name];
    let value = input.value;
    if (d.type === 'number') value = Number(value);
    else if (name === 'demand_enabled') value = value === 'true';
    const token = ($('#token') || {}).value || '';
    out.dataset.outcome = 'pending'; out.dataset.setting = name; out.className = '';
    out.textContent = t('settings.sending');
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    let res; let body = null;
    try {
      res = await fetch('/api/settings', { method: 'POST', headers, body: JSON.stringify({ name, value }) });
      const txt = await res.text();
      try { body = JSON.parse(txt); } catch { body = { reason: txt }; }
    } catch (e) {
      out.dataset.outcome = 'refused'; out.dataset.status = '0'; out.className = 'bad';
      out.textContent = t('settings.refused', t(`set.${name}`), String(e)); return;
    }
    out.dataset.status = String(res.status);
    const v = (x) => (x === null || x === undefined ? '--' : typeof x === 'object' ? JSON.stringify(x) : String(x));
    if (res.ok && body && body.accepted !== false) {
      out.dataset.outcome = 'accepted'; out.className = 'ok';
      out.textContent = t('settings.accepted', t(`set.${name}`), v(body.old), v(body.new));
      delete input.dataset.touched;
    } else {
      const reason = [body && (body.reason || body.error), ...((body && body.problems) || [])].filter(Boolean).join('; ') || t('settings.http', res.status);
      out.dataset.outcome = 'refused'; out.className = 'bad';
      out.textContent = `${t('settings.refused', t(`set.${name}`), reason)}${token ? '' : ` (${t('settings.no_token')})`}`;
    }
  }

  // ---------------------------------------------------------------- top bar and render
  function renderConn() {
    const c = $('#conn-state');
    c.dataset.state = S.conn;
    $('.conn-text', c).textContent = t(`conn.${S.conn}`);
    const lu = $('#last-update');
    lu.dataset.wallUnixS = S.lastWall ? String(S.lastWall) : '';
    lu.textContent = S.lastWall ? fmtTime(S.lastWall) : '--';
    const clock = S.snap && S.snap.clock;
    const sc = $('#station-clock');
    sc.dataset.clockUnixS = clock ? String(clock.clock_unix_s) : '';
    sc.textContent = clock ? `${fmtTime(clock.clock_unix_s, true)}${clock.scaled ? ` (×${fmt(clock.speed, 0)})` : ''}${clock.synced === false ? ` ⚠ ${t('clock.unsynced')}` : ''}` : '--';
    sc.dataset.synced = clock && clock.synced !== undefined && clock.synced !== null ? String(clock.synced) : '';
  }
  function renderSnapshot() {
    const s = S.snap;
    if (!s) return;
    renderStation(s); renderWhy(s); renderRooms(s); renderAlarms(s); renderField(s); fillSettings(false); renderVersion();
    if (S.curve) renderCurve();
  }
  function renderAll() {
    renderConn();
    if (S.snap) { renderStation(S.snap); renderWhy(S.snap); renderRooms(S.snap); renderField(S.snap); rerenderAlarmsOnly(); }
    renderCurve(); buildTrendLabels(); renderTrends(); renderAudit();
    renderVersion();
  }
  function renderVersion() {
    const id = S.snap && S.snap.station;
    const version = (id && id.version) || (S.info && S.info.version) || '';
    const parts = [version ? `heatctl ${version}` : 'heatctl'];
    if (id && id.config_hash) parts.push(`${t('footer.config')} ${id.config_hash}`);
    if (id && num(id.uptime_s)) parts.push(`${t('footer.uptime')} ${fmtAge(id.uptime_s)}`);
    setField('version', version, parts.join(' · '));
  }
  function rerenderAlarmsOnly() { const seen = S.activeSeen; renderAlarms(S.snap); S.activeSeen = seen; }
  function buildTrendLabels() {
    for (const e of $$('#trend-charts [data-i18n]')) e.textContent = t(e.dataset.i18n);
    for (const cb of $$('#trend-charts input[data-series]')) cb.parentElement.lastChild.textContent = t(`tr.${cb.dataset.series}`);
  }

  // One render per frame at most; a timer stands in when the browser holds animation frames
  // back (a hidden or background page, some headless browsers), so the page never stalls.
  let frame = null;
  function schedule() {
    if (frame) return;
    const run = () => {
      if (!frame) return;
      cancelAnimationFrame(frame.raf); clearTimeout(frame.timer);
      frame = null;
      renderSnapshot(); renderConn();
      if (S.trendDirty) { S.trendDirty = false; renderTrends(); }
    };
    frame = { raf: requestAnimationFrame(run), timer: setTimeout(run, 250) };
  }
  function onSnapshot(s) {
    const prevShift = S.snap && S.snap.settings && S.snap.settings.curve_shift_k;
    S.snap = s;
    S.lastWall = s.clock && num(s.clock.wall_unix_s) && s.clock.wall_unix_s > 0 ? s.clock.wall_unix_s : Date.now() / 1000;
    appendTrend(s);
    const shift = s.settings && s.settings.curve_shift_k;
    if (shift !== prevShift || Date.now() - S.curveAt > 3000) loadCurve();
    schedule();
  }

  // ---------------------------------------------------------------- loading
  async function getJson(path) {
    const r = await fetch(path, { headers: { Accept: 'application/json' } });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }
  let curveLoading = false;
  async function loadCurve() {
    if (curveLoading) return;
    curveLoading = true; S.curveAt = Date.now();
    try { S.curve = await getJson('/api/curve'); renderCurve(); } catch (e) { /* keep the last curve */ } finally { curveLoading = false; }
  }
  // The balancing advice: computed by the server from the room history every 10 minutes.
  async function loadBalance() {
    try { S.balance = await getJson('/api/balance'); } catch (e) { S.balance = null; }
    renderBalance();
  }
  function renderBalance() {
    const b = S.balance;
    const sum = $('#balance-summary');
    sum.textContent = (b && b.summary) || t('bal.none');
    const when = $('#balance-computed');
    when.textContent = b && num(b.computed_unix_s) ? `${t('bal.computed')}: ${fmtTime(b.computed_unix_s, true)}` : '';
    const body = $('#balance-table tbody');
    body.replaceChildren();
    const groups = (b && b.advice && Array.isArray(b.advice.groups)) ? b.advice.groups : [];
    for (const g of groups) {
      const kv = g.kv && g.kv.kind === 'change' ? `${fmt((g.kv.ratio - 1) * 100, 0, ' %', true)}` : (g.kv ? g.kv.kind.replace('_', ' ') : '');
      body.append(el('tr', { 'data-verdict': g.verdict },
        el('td', {}, g.riser ? `${g.building} / ${g.riser}` : g.building),
        el('td', {}, String(g.verdict || '').replace('_', '-')),
        el('td', { class: 'num' }, fmt(g.flow_ratio, 2)),
        el('td', {}, kv),
        el('td', {}, g.confidence || '')));
    }
    $('#balance-table').hidden = groups.length === 0;
  }
  function showError(what) {
    const e = $('#load-error');
    e.hidden = false; e.textContent = t('err.load', what);
  }

  function connect() {
    if (S.es) S.es.close();
    S.conn = 'connecting'; renderConn();
    const es = new EventSource('/api/events');
    S.es = es;
    es.addEventListener('open', () => { S.conn = 'open'; S.retry = 1000; renderConn(); reloadAudit(); });
    es.addEventListener('snapshot', (ev) => {
      try { S.conn = 'open'; onSnapshot(JSON.parse(ev.data)); } catch (e) { /* a bad event is skipped */ }
    });
    es.addEventListener('audit', (ev) => { try { addAudit(JSON.parse(ev.data)); } catch (e) { /* skipped */ } });
    es.addEventListener('error', () => {
      S.conn = 'closed'; renderConn();
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. the server answered with an error): retry ourselves.
        setTimeout(() => { if (S.es === es) connect(); }, S.retry);
        S.retry = Math.min(S.retry * 2, 15000);
      }
    });
  }

  async function start() {
    for (const b of $$('#lang-switch button')) {
      b.addEventListener('click', () => { localStorage.setItem('heatctl.lang', b.dataset.lang); applyLanguage(b.dataset.lang); });
    }
    for (const b of $$('#trend-ranges button')) b.addEventListener('click', () => setSpan(Number(b.dataset.rangeH)));
    $('#trend-reset').addEventListener('click', () => setSpan(48));
    for (const th of $$('#rooms-table th[data-sort-key]')) {
      th.addEventListener('click', () => {
        const k = th.dataset.sortKey;
        S.sort = { key: k, dir: S.sort.key === k ? -S.sort.dir : 1 };
        if (S.snap) renderRooms(S.snap);
      });
    }
    try { S.info = await getJson('/api/info'); } catch (e) { S.info = null; }
    S.lang = chooseLanguage();
    buildTrendCharts();
    applyLanguage(S.lang);
    if (!S.info) showError('/api/info');
    // The first snapshot comes with the event stream (no 503 before the first cycle to show).
    await reloadAudit();
    await loadTrends();
    loadBalance();
    setInterval(loadBalance, 600000);
    connect();
    document.body.dataset.ready = 'true';
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
